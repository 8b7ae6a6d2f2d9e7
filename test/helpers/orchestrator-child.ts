// `tah orchestrator` as a child process, for tests that kill and restart it: resolves with its URL
// once it listens (its --json 'listening' event), or rejects with its stderr when it exits first.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const TAH = fileURLToPath(new URL('../../bin/tah.js', import.meta.url));

/** Starts it with `args` (after `--json --log-level warn --no-ui`); `children` collects it, for the test's cleanup. */
export function startOrchestratorChild(args: string[], children: ChildProcess[]): Promise<{ child: ChildProcess; url: string }> {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, [TAH, 'orchestrator', '--json', '--log-level', 'warn', '--no-ui', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as { event?: string; url?: string };
      if (e.event === 'listening') resolve({ child, url: e.url! });
    });
    child.on('exit', (code) => reject(new Error(`orchestrator exited with ${code}: ${stderr}`)));
  });
}
