// Bad command lines for `tah swarm` and `tah miner`: one `tah: error:` line naming the problem, a
// failing JSON summary, and nothing created.
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { assertFailsOnStderr, assertJsonFailure, runTah, tempDir } from '../run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => ({ dir, cleanup } = await tempDir('tah-swarm-flags-')));
after(() => cleanup());

const cases: [string, string[], RegExp][] = [
  ['an unknown preset', ['swarm', '--preset', 'nope'], /--preset must be one of tiny, small, demo, medium, iota-1.5b, got 'nope'/],
  ['more stages than layers', ['swarm', '--preset', 'tiny', '--stages', '9'], /cannot split 4 layers into 9 stages/],
  ['both --rounds and --minutes', ['swarm', '--rounds', '2', '--minutes', '1'], /give --rounds or --minutes, not both/],
  ['samples that do not divide the batch', ['swarm', '--preset', 'tiny', '--batch', '8', '--samples-per-round', '3'], /--samples-per-round 3 does not divide the preset's batch of 8/],
  ['zero rounds', ['swarm', '--rounds', '0'], /expected an integer ≥ 1, got '0'/],
  ['a non-numeric replica count', ['swarm', '--replicas', 'two'], /expected an integer ≥ 1, got 'two'/],
  ['a check rate above 1', ['swarm', '--check-rate', '1.5'], /expected a number from 0 to 1, got '1.5'/],
  ['an orchestrator that is not an http URL', ['miner', '--orchestrator', 'ftp://example.org'], /--orchestrator must be an http\(s\) URL/],
  ['no orchestrator', ['miner'], /required option '--orchestrator <url>' not specified/],
  ['a wallet file that does not exist', ['miner', '--orchestrator', 'http://127.0.0.1:9', '--wallet', 'missing.json'], /wallet file .*missing\.json/],
  ['an unknown device', ['miner', '--orchestrator', 'http://127.0.0.1:9', '--device', 'tpu'], /argument 'tpu' is invalid/],
];

for (const [name, args, problem] of cases) {
  test(`refused: ${name}`, async () => {
    const cwd = join(dir, name.replace(/\W+/g, '-'));
    await mkdir(cwd);
    const run = await runTah([...args, '--json'], { cwd, timeoutMs: 60_000 });
    assertFailsOnStderr(run, problem);
    assertJsonFailure(run, problem);
    assert.deepEqual(await readdir(cwd), [], 'nothing is created');
  });
}
