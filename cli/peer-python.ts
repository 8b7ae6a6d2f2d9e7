// Which python runs the PyTorch peer (scripts/torch_llama.py) for `tah bench engine`, the
// cross-check tests and scripts/provider-drift.ts: one decision, made here.
//
// In order: $TAH_PYTHON when set (then only it); the repository's virtual environment
// .venv-torch, where `pip install torch` puts the current PyTorch; Debian's /usr/bin/python3 with
// python3-torch (1.13 with OpenBLAS, a much weaker peer). The first that imports torch wins.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this module (or the CLI bundle) holding scripts/torch_llama.py. */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
export const TORCH_SCRIPT = join(REPO_ROOT, 'scripts', 'torch_llama.py');
/** The virtual environment `tah` looks for, relative to the repository root. */
export const VENV_DIR = '.venv-torch';
export const SYSTEM_PYTHON = '/usr/bin/python3';
export const INSTALL_HINT = `python3 -m venv ${VENV_DIR} && ${VENV_DIR}/bin/pip install torch transformers`;

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'scripts', 'torch_llama.py'))) return dir;
    if (dirname(dir) === dir) return join(from, '..', '..');
  }
}

/** What the choice depends on, so that it is a pure function of it. */
export interface PythonWorld {
  root: string;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  exists: (path: string) => boolean;
  /** Whether `python -c "import <module>"` succeeds. */
  imports: (python: string, module: string) => boolean;
}

export type PeerPython =
  | { ok: true; python: string; source: 'env' | 'venv' | 'system' }
  | { ok: false; reason: string };

export function venvPython(root: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? join(root, VENV_DIR, 'Scripts', 'python.exe') : join(root, VENV_DIR, 'bin', 'python');
}

/** The python whose torch is the peer, or why there is none (naming the install command). */
export function choosePeerPython(world: PythonWorld): PeerPython {
  const fix = `install the current PyTorch with \`${INSTALL_HINT}\` in ${world.root}`;
  const override = world.env.TAH_PYTHON;
  if (override) {
    if (world.imports(override, 'torch')) return { ok: true, python: override, source: 'env' };
    return { ok: false, reason: `TAH_PYTHON=${override} cannot import torch (${fix}, or unset TAH_PYTHON)` };
  }
  const venv = venvPython(world.root, world.platform);
  const venvState = world.exists(venv) ? (world.imports(venv, 'torch') ? 'ok' : 'cannot import torch') : 'does not exist';
  if (venvState === 'ok') return { ok: true, python: venv, source: 'venv' };
  if (world.exists(SYSTEM_PYTHON) && world.imports(SYSTEM_PYTHON, 'torch')) return { ok: true, python: SYSTEM_PYTHON, source: 'system' };
  return { ok: false, reason: `no python with torch: ${venv} ${venvState} and ${SYSTEM_PYTHON} cannot import torch (${fix})` };
}

const importCache = new Map<string, boolean>();
/** `python -c "import module"` (each pair checked once per process). */
export function pythonImports(python: string, module: string): boolean {
  const key = `${python}\0${module}`;
  let ok = importCache.get(key);
  if (ok === undefined) {
    ok = spawnSync(python, ['-c', `import ${module}`], { stdio: 'ignore', timeout: 120_000 }).status === 0;
    importCache.set(key, ok);
  }
  return ok;
}

let found: PeerPython | undefined;
/** The peer python of this machine and repository (decided once per process). */
export function peerPython(): PeerPython {
  found ??= choosePeerPython({ root: REPO_ROOT, env: process.env, platform: process.platform, exists: existsSync, imports: pythonImports });
  return found;
}

/** One line for a user whose peer is the old system PyTorch, or undefined. */
export function weakPeerNote(p: PeerPython): string | undefined {
  return p.ok && p.source === 'system' ? `the PyTorch peer is ${SYSTEM_PYTHON}'s (Debian's, far behind the current release); for the current one: ${INSTALL_HINT}` : undefined;
}

/** Runs `python torch_llama.py ...args` and parses the last JSON line it prints; rejects with its stderr. */
export function runTorchScript(python: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    execFile(python, [TORCH_SCRIPT, ...args], { timeout: opts.timeoutMs ?? 0, maxBuffer: 64 << 20, env: opts.env }, (err, stdout, stderr) => {
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
