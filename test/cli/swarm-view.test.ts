// The `tah swarm` dashboard: lines never exceed the width, miners come in stage order, colour
// only on request, and the header shows progress, loss, throughput and time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanDuration, humanNumber, renderSwarmView } from '../../cli/swarm-view.ts';
import type { MinerView, SwarmViewState } from '../../cli/swarm-view.ts';

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;
const visible = (line: string): number => Array.from(line.replace(ANSI, '')).length;

const miner = (name: string, stage: number | null, extra: Partial<MinerView> = {}): MinerView => ({
  name, stage, state: 'forward', version: 3, tokensPerS: 1234, items: 42, ...extra,
});

function state(extra: Partial<SwarmViewState> = {}): SwarmViewState {
  return {
    preset: 'small', round: 12, rounds: 50, loss: 3.41234, tokens: 1_234_567, tokensPerS: 12_345,
    elapsedS: 65, remainingS: 205, orchestrator: 'up',
    miners: [miner('miner-10', 1), miner('miner-2', 0), miner('miner-3', null, { state: 'starting' }), miner('miner-1', 1, { state: 'dead' })],
    ...extra,
  };
}

test('header shows round progress, loss, throughput and times', () => {
  const [head, stats] = renderSwarmView(state());
  assert.match(head, /round 12\/50 \[█+░+\] 24%/);
  assert.match(head, /orchestrator up/);
  assert.match(stats, /loss 3\.412/);
  assert.match(stats, /12\.3k tok\/s/);
  assert.match(stats, /1\.2M tokens/);
  assert.match(stats, /elapsed 1m05s/);
  assert.match(stats, /left 3m25s/);
});

test('minute-bounded runs show a bare round count and no bar; unknown loss and time left are handled', () => {
  const lines = renderSwarmView(state({ rounds: null, loss: null, remainingS: null }));
  assert.match(lines[0], /round 12 /);
  assert.doesNotMatch(lines[0], /[█░%]/);
  assert.match(lines[1], /loss –/);
  assert.doesNotMatch(lines[1], /left/);
  assert.ok(!lines.join('\n').includes('NaN'));
});

test('a finished run fills the bar', () => {
  assert.match(renderSwarmView(state({ round: 50 }))[0], /\[█+\] 100%/);
});

test('miners are sorted by stage, then naturally by name, registering ones last', () => {
  const lines = renderSwarmView(state());
  const order = ['miner-2', 'miner-1', 'miner-10', 'miner-3'].map((n) => lines.findIndex((l) => l.startsWith(`${n} `)));
  assert.ok(order.every((i) => i > 0), lines.join('\n'));
  assert.deepEqual([...order].sort((a, b) => a - b), order);
  const row = lines[order[0]];
  for (const col of ['forward', '1.2k', '42']) assert.ok(row.includes(col), row);
});

test('no ANSI codes without colour; colour when asked, without changing the visible text', () => {
  const plain = renderSwarmView(state());
  assert.ok(!plain.join('\n').includes('\x1b'));
  const colored = renderSwarmView(state(), { color: true });
  assert.ok(colored.join('\n').includes('\x1b['));
  assert.deepEqual(colored.map((l) => l.replace(ANSI, '')), plain);
});

test('long names, presets and errors never push a line past the width', () => {
  const long = state({
    preset: 'p'.repeat(150),
    orchestrator: 'restarting after a very long outage '.repeat(3),
    miners: [
      miner('m'.repeat(80), 0, { lastError: 'Error: connect ECONNREFUSED 127.0.0.1:8080\n    at TCPConnectWrap '.repeat(5) }),
      miner('miner-1', 1, { lastError: '\x1b[31mred\x1b[0m\tand\rcontrol' }),
    ],
  });
  for (const width of [100, 80, 40, 20, 5]) {
    for (const color of [false, true]) {
      const lines = renderSwarmView(long, { width, color });
      for (const l of lines) assert.ok(visible(l) <= width, `width ${width}: ${JSON.stringify(l)}`);
      for (const l of lines) assert.ok(!/[\n\r\t]/.test(l));
    }
  }
  const lines = renderSwarmView(long);
  const errRow = lines.find((l) => l.includes('ECONNREFUSED'));
  assert.ok(errRow?.endsWith('…'), errRow);
  assert.ok(lines.some((l) => l.includes('red and control')), 'control bytes in errors are flattened');
});

test('an empty swarm still renders', () => {
  const lines = renderSwarmView(state({ miners: [] }));
  assert.ok(lines.some((l) => l.includes('no miners')));
});

test('numbers and durations read humanely', () => {
  assert.deepEqual([0, 7, 950, 12_345, 999_600, 4_200_000].map(humanNumber), ['0', '7', '950', '12.3k', '1.0M', '4.2M']);
  assert.deepEqual([5, 65, 600, 3725, NaN].map(humanDuration), ['5s', '1m05s', '10m00s', '1h02m', '–']);
});
