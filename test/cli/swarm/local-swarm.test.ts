// The local swarm's host: what it tells when a part fails to start or the run stalls, and that
// nothing it started outlives it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalSwarm } from '../../../cli/swarm/local-swarm.ts';
import { tempDir } from '../run-tah.ts';
import { caseSpec } from './helpers.ts';

const CASE = { preset: 'tiny', stages: 2, samples: 2, rows: 1, rounds: 3, seed: 1, lr: 1e-3 };

/** The processes whose command line names `dir` (Linux: /proc). */
async function processesIn(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir)) found.push(Number(name));
  }
  return found;
}

test('a miner that exits before it has a stage is reported with its last words, not waited for', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-swarm-host-');
  const swarm = new LocalSwarm({ dir, spec: caseSpec(CASE), threadsPerMiner: 1 });
  try {
    await swarm.start();
    const i = await swarm.addMiner({ TAH_FAULTS: 'no-such-fault' });
    await assert.rejects(swarm.minerAssigned(i), /miner 0 exited before it was given a stage: .*unknown fault 'no-such-fault'/);
  } finally {
    await swarm.close();
    await cleanup();
  }
});

test('a run where no round finishes for stallMs ends the wait with what is unfinished', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-swarm-host-');
  const swarm = new LocalSwarm({ dir, spec: caseSpec(CASE), threadsPerMiner: 1, stallMs: 1500 });
  try {
    await swarm.start();
    // Nobody to do the work: round 0's samples wait at stage 0.
    await assert.rejects(swarm.waitFinished(undefined, 100), (e: Error) => {
      assert.match(e.message, /^no round finished in \d+ s \(rounds done: 0\)/);
      assert.match(e.message, /unfinished work \(\d+\):\n {2}r0 stage 0 forward \S+ pending/);
      return true;
    });
  } finally {
    await swarm.close();
    await cleanup();
  }
});

test('a host killed outright (SIGKILL) leaves nothing running: its orchestrator and miners stop by themselves', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = await tempDir('tah-swarm-host-');
  try {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const host = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('swarm-host.ts', import.meta.url)), dir], { stdio: ['ignore', 'pipe', 'inherit'], env });
    const exited = new Promise((r) => host.once('exit', r));
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: host.stdout! }).once('line', resolve);
      host.once('exit', (code) => reject(new Error(`the host exited (${code}) before its miner had a stage`)));
    });
    assert.deepEqual(JSON.parse(first), { stage: 0 });
    const started = await processesIn(dir);
    assert.ok(started.length >= 2, `the orchestrator and the miner run: ${started}`);
    host.kill('SIGKILL');
    await exited;
    // They stop within their grace time (10 s) once the host's channel closes.
    const deadline = Date.now() + 20_000;
    let left = await processesIn(dir);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      left = await processesIn(dir);
    }
    assert.deepEqual(left, [], 'every process the host started has stopped');
  } finally {
    await cleanup();
  }
});
