// The local swarm end to end, with real processes: an orchestrator and miners over HTTP, signed
// requests, the local blob store. Its result must equal single-process training on the same
// samples — as it runs, with a miner killed mid-round and another joining later, and across a
// restart of the orchestrator.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { loadCheckpoint } from '../../../worker/checkpoint/checkpoint.ts';
import { openDatabase } from '../../../orchestrator/db/open.ts';
import { evenStages } from '../../../orchestrator/runs.ts';
import { loadBrownCorpus } from '../../../worker/data/brown.ts';
import { buildDataset, heldoutBatches } from '../../../worker/data/dataset.ts';
import { byteTokenizer } from '../../../worker/data/tokenizer.ts';
import { loadPreset } from '../../../worker/model/config.ts';
import { ParamLayout } from '../../../worker/model/params.ts';
import { DEFAULT_ADAMW } from '../../../worker/optim/adamw.ts';
import { PipelineTrainer, stageSpans } from '../../../worker/train/pipeline.ts';
import { jsonLines, runTah, show, tempDir } from '../run-tah.ts';
import { type SwarmCase, assertEqualWeights, caseConfig, caseSpec, compareWithSingle, killMidRound, runCase as runRecorded, singleProcessWeights } from './helpers.ts';

const TINY: SwarmCase = { preset: 'tiny', stages: 3, samples: 4, rows: 2, rounds: 5, seed: 3, lr: 3e-3 };

test('tah swarm --preset tiny --stages 3 --replicas 2 --rounds 5 ends with the weights of tah train on the same batches', { timeout: 240_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-swarm-');
  try {
    const swarm = await runTah(['swarm', '--preset', 'tiny', '--stages', '3', '--replicas', '2', '--rounds', '5', '--batch', '8', '--seed', '3', '--lr', '3e-3', '--check-rate', '1', '--eval-batches', '16', '--no-baseline', '--dir', join(dir, 'swarm'), '--json'], { cwd: dir, timeoutMs: 200_000 });
    assert.equal(swarm.code, 0, show(swarm));
    const lines = jsonLines(swarm.stdout);
    const summary = lines.at(-1)!;
    assert.equal(summary.summary, true);
    for (const key of ['heldout_loss', 'rounds', 'tokens', 'tokens_per_s', 'single_process_tokens_per_s', 'bytes_per_token', 'wall_s', 'report']) assert.ok(key in summary, `summary has ${key}`);
    assert.equal(summary.rounds, 5);
    assert.equal(summary.tokens, 5 * 8 * 64);
    // Every item is drawn for a check: the validators re-ran honest work and every verdict passed.
    const checks = summary.checks as { passed: number; failed: number; rate: number };
    assert.equal(checks.rate, 1);
    assert.ok(checks.passed > 0, `validators judged no work: ${JSON.stringify(checks)}`);
    assert.equal(checks.failed, 0);
    assert.equal(lines.filter((l) => l.event === 'round').length, 5);
    assert.match(await readFile(summary.report as string, 'utf8'), /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    // Two replicas make one pair: each stage is one slice, reduced once by each of them.
    const db = await openDatabase(`sqlite:${join(dir, 'swarm', 'orchestrator.db')}`);
    try {
      const reduced = await db.db.selectFrom('work_items').select(['round', 'stage', 'completed_by', 'detail_json']).where('direction', '=', 'reduce').where('status', '=', 'done').execute();
      assert.equal(reduced.length, 5 * 3 * 2, `reductions: ${reduced.length}`);
      for (const r of reduced) assert.equal((JSON.parse(r.detail_json) as { slice: number }).slice, 0);
      for (let round = 0; round < 5; round++) {
        for (let stage = 0; stage < 3; stage++) {
          const by = reduced.filter((r) => Number(r.round) === round && r.stage === stage).map((r) => r.completed_by);
          assert.equal(new Set(by).size, 2, `round ${round} stage ${stage}: reduced by ${by.join(', ')}`);
        }
      }
    } finally {
      await db.close();
    }

    // The reported held-out loss is the stages' (evaluated here through the pipeline, two sequences
    // a micro-batch, on the 16 held-out batches asked for), though the command may compute it in one graph.
    const config = { ...loadPreset('tiny'), batch_size: 8 };
    const model = await loadCheckpoint(summary.checkpoint as string);
    const spans = stageSpans(evenStages(config.n_layers, 3));
    const stageParams = spans.map((span) => {
      const layout = new ParamLayout(config, span);
      const flat = new Float32Array(layout.size);
      for (const e of layout.entries) flat.set(model.weights.get(e.name)!.data, e.offset);
      return flat;
    });
    const pipeline = await PipelineTrainer.create({ config, stages: evenStages(config.n_layers, 3), optim: DEFAULT_ADAMW, rows: 2, threads: 1 });
    try {
      const expected = await pipeline.heldoutLoss(stageParams, heldoutBatches(buildDataset(loadBrownCorpus(), byteTokenizer), { batchSize: 8, seqLen: config.seq_len, maxBatches: 16 }));
      assert.ok(Math.abs((summary.heldout_loss as number) - expected) <= 1e-5 * expected, `held-out ${summary.heldout_loss as number} vs. the stages' ${expected}`);
    } finally {
      await pipeline.dispose();
    }

    const train = await runTah(['train', '--preset', 'tiny', '--steps', '5', '--batch', '8', '--seed', '3', '--lr', '3e-3', '--eval-batches', '1', '--checkpoint', join(dir, 'single.safetensors'), '--json'], { cwd: dir });
    assert.equal(train.code, 0, show(train));
    const single = await loadCheckpoint(join(dir, 'single.safetensors'));
    const together = await loadCheckpoint(summary.checkpoint as string);
    assert.equal(together.step, 5);
    assert.equal(together.weights.size, single.weights.size);
    for (const [name, t] of single.weights) {
      const a = together.weights.get(name)!.data;
      let num = 0;
      let den = 0;
      for (let i = 0; i < a.length; i++) {
        num += (a[i] - t.data[i]) ** 2;
        den += t.data[i] ** 2;
      }
      const rel = Math.sqrt(num / den);
      assert.ok(rel <= 1e-4, `${name}: relative error ${rel} against tah train`);
    }
  } finally {
    await cleanup();
  }
});

/** A swarm of real processes for a case; `onEvent` sees every miner event and may inject failures. */
async function runCase(c: SwarmCase, dir: string, miners: number, onEvent: (swarm: LocalSwarm, miner: number, e: Record<string, unknown>) => void, partMib?: number) {
  const swarm: LocalSwarm = new LocalSwarm({
    dir,
    ...(partMib !== undefined ? { partMib } : {}),
    spec: caseSpec(c, { heartbeat_timeout_s: 3, lease_ttl_s: 20 }),
    threadsPerMiner: 1,
    onMinerEvent: (m, e) => onEvent(swarm, m, e),
  });
  try {
    await swarm.start();
    for (let i = 0; i < miners; i++) await swarm.addMiner();
    return { swarm, status: await swarm.waitFinished(undefined, 250) };
  } finally {
    await swarm.close();
  }
}

test('a miner killed mid-round and another joining later: the run still ends equal to single-process training', { timeout: 300_000 }, async () => {
  const c = { ...TINY, rounds: 10 };
  const { dir, cleanup } = await tempDir('tah-swarm-faults-');
  try {
    const reference = await singleProcessWeights(c);
    const fault = killMidRound();
    const { swarm, status } = await runCase(c, dir, 6, fault.onEvent);
    const [killed, joined] = [fault.killed(), fault.joined()];
    assert.equal(status.status, 'finished');
    assert.ok(killed >= 0 && joined, 'a miner was killed and another joined');
    const newcomer = swarm.miners[await joined!].hotkey!;
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    try {
      const events = await db.db.selectFrom('events').select(['kind', 'hotkey']).execute();
      assert.ok(events.some((e) => e.kind === 'gone' && e.hotkey === swarm.miners[killed].hotkey), 'the killed miner was reaped');
      // Its gradient sum was re-issued, unless the kill came just after it had stored its share.
      const shared = await db.db.selectFrom('work_items').select('id').where('direction', '=', 'share').where('round', '=', 1).where('completed_by', '=', swarm.miners[killed].hotkey!).execute();
      assert.ok(events.some((e) => e.kind === 'contribution_lost' && e.hotkey === swarm.miners[killed].hotkey) || shared.length > 0, 'its gradient sum was re-issued');
      const work = await db.db.selectFrom('work_items').select('id').where('completed_by', '=', newcomer).execute();
      assert.ok(work.length > 0, 'the newcomer did work');
    } finally {
      await db.close();
    }
  } finally {
    await cleanup();
  }
});

test("the replica asked to store a stage's final state is killed as it starts: another stores it, and the run ends exact", { timeout: 300_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-swarm-store-');
  try {
    const reference = await singleProcessWeights(TINY);
    // The run is finished once every stage's final state is stored; the other replica of the stage
    // has often applied the last round already and only waits, so nobody would store it again.
    // Every miner waits 2 s before it stores a state, so the kill lands before the upload.
    let killed = -1;
    const { swarm, status } = await runRecorded(TINY, dir, Array.from({ length: 6 }, () => ({ TAH_FAULTS: 'store-delay:2000' })), (swarm, m, e) => {
      if (killed >= 0 || e.event !== 'status' || e.state !== 'store' || e.version !== TINY.rounds) return;
      killed = m;
      void swarm.killMiner(m, 'SIGKILL');
    });
    assert.equal(status.status, 'finished');
    assert.ok(killed >= 0, 'a miner was killed as it stored a final state');
    assertEqualWeights(await compareWithSingle(TINY, dir, status, reference));
    const db = await openDatabase(`sqlite:${join(dir, 'orchestrator.db')}`);
    try {
      const stored = await db.db.selectFrom('snapshots').select(['stage', 'holder']).where('rounds', '=', TINY.rounds).where('status', '=', 'done').execute();
      assert.equal(stored.length, TINY.stages);
      assert.ok(stored.every((x) => x.holder !== swarm.miners[killed].hotkey), 'each final state was stored by a replica that lived');
    } finally {
      await db.close();
    }
  } finally {
    await cleanup();
  }
});

// With 8 KiB parts, every activation, gradient, share slice and snapshot goes up in parts, and
// uploads in parts are in flight when the orchestrator dies.
test('the orchestrator killed (SIGKILL) and restarted mid-round, uploads in parts: the run completes, still exact', { timeout: 300_000 }, async () => {
  const c = { ...TINY, seed: 4 };
  const { dir, cleanup } = await tempDir('tah-swarm-restart-');
  try {
    const reference = await singleProcessWeights(c);
    let restarted: Promise<void> | null = null;
    const { status } = await runCase(c, dir, 6, (swarm, _m, e) => {
      if (!restarted && e.event === 'work' && e.round === 2) {
        restarted = (async () => {
          await swarm.killOrchestrator('SIGKILL');
          await swarm.startOrchestrator();
        })();
      }
    }, 8 / 1024);
    assert.ok(restarted, 'the orchestrator was restarted');
    await restarted;
    assert.equal(status.status, 'finished');
    assert.equal(status.rounds_done, c.rounds);
    assertEqualWeights(await compareWithSingle(c, dir, status, reference));
  } finally {
    await cleanup();
  }
});

test('caseConfig splits the batch as the swarm does', () => {
  const { config, stages } = caseConfig(TINY);
  assert.equal(config.batch_size, 8);
  assert.deepEqual(stages, [[0, 1], [2, 2], [3, 3]]);
});
