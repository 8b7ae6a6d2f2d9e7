// The one grammar of ids that become parts of paths and storage keys, at every boundary that
// takes one: 1 to 128 letters, digits, '.', '_' and '-', starting with a letter or digit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CompleteRequestSchema, IdSchema, RegisterRequestSchema, RejectRequestSchema, ReleaseRequestSchema, RunSpecSchema, VerdictRequestSchema } from '../../orchestrator-client/protocol.ts';

const GOOD = ['run1', 'demo.v2', 'r0-s12', 'A', '0', 'a_b-c.d', 'a'.repeat(128), 'run1.'];
const BAD = ['', '.', '..', '...', '.hidden', '-rf', '_x', 'a/b', 'a\\b', 'a b', 'a\u0000b', 'a\nb', 'a'.repeat(129), 'é', 'run%2F1', '..%2f'];

test('ids: what the grammar takes and what it refuses', () => {
  for (const id of GOOD) assert.ok(IdSchema.safeParse(id).success, `accepts ${JSON.stringify(id)}`);
  for (const id of BAD) assert.ok(!IdSchema.safeParse(id).success, `refuses ${JSON.stringify(id)}`);
});

test('every request that names a run or a lease refuses an id outside the grammar', () => {
  const spec = { preset: 'tiny', stages: [[0, 3]], samples_per_round: 1 };
  const hardware = { device: 'cpu', cores: 1, memory_bytes: 1, tokens_per_s: 0 };
  const carriers: [string, (id: string) => boolean][] = [
    ['a run spec', (id) => RunSpecSchema.safeParse({ ...spec, id }).success],
    ['a registration', (id) => RegisterRequestSchema.safeParse({ role: 'miner', run_id: id, hardware }).success],
    ['a completion', (id) => CompleteRequestSchema.safeParse({ lease_id: id }).success],
    ['a release', (id) => ReleaseRequestSchema.safeParse({ lease_id: id }).success],
    ['a rejection', (id) => RejectRequestSchema.safeParse({ lease_id: id, reason: 'x' }).success],
    ['a verdict', (id) => VerdictRequestSchema.safeParse({ lease_id: id, outcome: 'pass', error: 0, signature: `0x${'0'.repeat(128)}` }).success],
  ];
  for (const [what, accepts] of carriers) {
    assert.ok(accepts('run1'), `${what} takes a good id`);
    for (const id of BAD) assert.ok(!accepts(id), `${what} refuses ${JSON.stringify(id)}`);
  }
});
