// Runs the real `tah` command (bin/tah.js) as a child process, as a user would, and reads back
// its exit status, output and --json lines. Shared by the test/cli suites.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TAH = fileURLToPath(new URL('../../bin/tah.js', import.meta.url));

export interface TahRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time of the child process in seconds. */
  wallS: number;
}

export interface TahOptions {
  /** Working directory (where a default `runs/` folder would go). */
  cwd: string;
  timeoutMs?: number;
  /** A program and its arguments to run `node bin/tah.js ...` under (e.g. /usr/bin/time). */
  wrapper?: string[];
  /** Sends this signal to the child the first time its stdout contains the text. */
  signalOn?: { text: string; signal: NodeJS.Signals };
  /** Variables to set (or, as undefined, to remove) in the child's environment. */
  env?: NodeJS.ProcessEnv;
}

/** Runs `node bin/tah.js ...args` and collects everything it prints. */
export function runTah(args: string[], opts: TahOptions): Promise<TahRun> {
  const env = { ...process.env, ...opts.env };
  // The test runner marks its own child processes; tah is not one of them.
  delete env.NODE_TEST_CONTEXT;
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const argv = [...(opts.wrapper ?? []), process.execPath, TAH, ...args];
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 120_000 });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      if (opts.signalOn && !signalled && stdout.includes(opts.signalOn.text)) {
        signalled = true;
        child.kill(opts.signalOn.signal);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, wallS: (performance.now() - started) / 1000 }));
  });
}

/** Every non-empty stdout line parsed as JSON; fails naming the first line that is not. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  return lines.map((l, i) => {
    try {
      const v: unknown = JSON.parse(l);
      assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `stdout line ${i + 1} is JSON but not an object: ${l}`);
      return v as Record<string, unknown>;
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.fail(`stdout line ${i + 1} is not JSON: ${l}`);
    }
  });
}

/** The lines of stderr that start with `tah: error:`. */
export const errorLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('tah: error:'));

/** A describes-the-run text for assertion messages. */
export const show = (r: TahRun): string => `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

/**
 * Checks a failed run: non-zero exit and exactly one `tah: error:` line on stderr that matches
 * `problem`. Returns that line.
 */
export function assertFailsOnStderr(r: TahRun, problem: RegExp): string {
  assert.equal(r.signal, null, `killed by a signal\n${show(r)}`);
  assert.ok(r.code !== 0 && r.code !== null, `expected a non-zero exit\n${show(r)}`);
  const errs = errorLines(r.stderr);
  assert.equal(errs.length, 1, `expected exactly one 'tah: error:' line\n${show(r)}`);
  assert.match(errs[0], problem);
  return errs[0];
}

/** Checks that the last stdout line of a --json run is {summary: true, ok: false, error} naming `problem`. */
export function assertJsonFailure(r: TahRun, problem: RegExp): void {
  const lines = jsonLines(r.stdout);
  assert.ok(lines.length > 0, `--json: expected a summary line on stdout\n${show(r)}`);
  const last = lines[lines.length - 1];
  assert.equal(last.summary, true, `last stdout line is not a summary: ${JSON.stringify(last)}`);
  assert.equal(last.ok, false);
  assert.equal(typeof last.error, 'string');
  assert.match(last.error as string, problem);
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `tah-cli-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
