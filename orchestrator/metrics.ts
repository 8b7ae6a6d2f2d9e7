// Prometheus metrics at /metrics (public): requests and latency by route, and the training
// progress of the active runs, read from the database when scraped.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ROUTES } from '../orchestrator-client/routes.ts';
import type { Coordinator } from './coordinator.ts';

export function registerMetrics(app: FastifyInstance, coordinator: Coordinator): void {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'tah_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['route', 'status'], registers: [registry] });
  const runLabels = ['run'];
  const roundsDone = new Gauge({ name: 'tah_rounds_reduced', help: 'rounds whose step is known', labelNames: runLabels, registers: [registry] });
  const roundLoss = new Gauge({ name: 'tah_round_loss', help: 'mean training loss of the newest reduced round', labelNames: runLabels, registers: [registry] });
  const roundSeconds = new Gauge({ name: 'tah_round_seconds', help: 'time between the two newest reduced rounds', labelNames: runLabels, registers: [registry] });
  new Gauge({
    name: 'tah_miners_active',
    help: 'active miners per run and stage',
    labelNames: ['run', 'stage'],
    registers: [registry],
    async collect() {
      for (const st of await coordinator.activeRunStatuses()) {
        roundsDone.set({ run: st.run_id }, st.rounds_done);
        const last = st.losses.at(-1);
        if (last?.loss !== null && last?.loss !== undefined) roundLoss.set({ run: st.run_id }, last.loss);
        const prev = st.losses.at(-2);
        if (last && prev) roundSeconds.set({ run: st.run_id }, (last.reduced_at - prev.reduced_at) / 1000);
        const perStage = new Map<number, number>();
        for (const m of st.miners) if (m.status === 'active' && m.stage !== null) perStage.set(m.stage, (perStage.get(m.stage) ?? 0) + 1);
        for (const [stage, n] of perStage) this.set({ run: st.run_id, stage: String(stage) }, n);
      }
    },
  });
  const latency = new Histogram({ name: 'tah_http_request_seconds', help: 'HTTP request latency', labelNames: ['route'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: [registry] });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ route, status: reply.statusCode });
    latency.observe({ route }, reply.elapsedTime / 1000);
  });
  const route = ROUTES.metrics;
  app.route({ method: route.method, url: route.path, config: { access: route.access }, handler: async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()) });
}
