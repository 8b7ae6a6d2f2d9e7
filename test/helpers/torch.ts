// Runs the project's PyTorch reference (scripts/torch_llama.py) from tests. Debian's python3
// carries torch; where it does not, tests that need it skip.
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
export const TORCH_SCRIPT = fileURLToPath(new URL('../../scripts/torch_llama.py', import.meta.url));

let available: boolean | undefined;
/** Whether `/usr/bin/python3 -c "import torch"` works (checked once). */
export function torchAvailable(): boolean {
  available ??= spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
  return available;
}

/** Runs `torch_llama.py ...args` and parses the last JSON line it prints; rejects with its stderr. */
export function runTorchScript(args: string[], opts: { timeoutMs?: number } = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [TORCH_SCRIPT, ...args], { timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`torch_llama.py ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }));
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`torch_llama.py ${args.join(' ')}: last output line is not JSON: ${last}`));
      }
    });
  });
}
