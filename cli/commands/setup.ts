// `tah setup cuda`: installs ONNX Runtime's CUDA provider by running onnxruntime-node's own
// installer, the step `npm ci` leaves out (package.json's allowScripts) because it downloads from
// NuGet rather than the npm registry. Its world (platform, the package folder, how to run a
// process) comes in as an argument, so the tests run it without a network.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { CUDA_PROVIDER_LIB, binaryDir, cudaPlatform, cudaPlatformProblem, onnxruntimeNodeDir } from '../../worker/engine/cuda.ts';
import { type Output, makeOutput } from '../output.ts';
import type { Guard } from './wallet.ts';

export interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Everything the process wrote to stderr. */
  stderr: string;
}

/** Runs a program to its end, handing each line of its stdout to `onLine`. */
export type SpawnFn = (command: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; onLine: (line: string) => void }) => Promise<Spawned>;

export interface SetupWorld {
  platform: string;
  arch: string;
  /** onnxruntime-node's package folder. */
  packageDir: string;
  env: NodeJS.ProcessEnv;
  /** The Node binary that runs the installer. */
  node: string;
  spawn: SpawnFn;
}

/**
 * The installer's switch (script/install-utils.js, parseInstallFlag), as a flag and as the
 * environment variable it reads first. Bare, it forces the installation of what this platform
 * needs from outside the package, which on Linux x64 is the CUDA 12 provider and nothing else
 * (install-metadata.js). The named form `=cuda12` is not used: onnxruntime-node 1.30 parses it
 * as no switch at all, and without one the installer exits at once when npm (npx) started it
 * from the project, or when the files are there already.
 */
export const INSTALL_ARG = '--onnxruntime-node-install';
const INSTALL_ENV = 'true';

/**
 * The installer's environment. Its ONNXRUNTIME_NODE_INSTALL wins over the command-line flag, so a
 * leftover `skip` would make it exit at once without installing: it is set to the flag's meaning.
 * The installer's proxy support (global-agent) reads GLOBAL_AGENT_HTTPS_PROXY only; the usual
 * HTTPS_PROXY and NO_PROXY are passed on under those names unless they are set.
 */
export function installerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, ONNXRUNTIME_NODE_INSTALL: INSTALL_ENV };
  for (const name of ['HTTPS_PROXY', 'HTTP_PROXY', 'NO_PROXY']) {
    const value = env[name] ?? env[name.toLowerCase()];
    if (value && !env[`GLOBAL_AGENT_${name}`]) out[`GLOBAL_AGENT_${name}`] = value;
  }
  return out;
}

const NETWORK_CODES = /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN|CERT_\w+)\b/;

/** One line saying why the installer failed, from its exit and what it wrote to stderr (Node's report of an uncaught error). */
export function installerFailure(r: Spawned): string {
  const lines = r.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const error = lines.find((l) => /^\w*Error: /.test(l))?.replace(/^\w*Error: /, '') ?? lines.at(-1);
  const exit = r.signal ? `stopped by ${r.signal}` : `exit code ${r.code}`;
  if (error && NETWORK_CODES.test(error)) {
    return `cannot download the CUDA provider from api.nuget.org (${error}); behind a proxy, set HTTPS_PROXY (or GLOBAL_AGENT_HTTPS_PROXY) and run it again`;
  }
  return `onnxruntime-node's CUDA installer failed (${error ? `${error}; ` : ''}${exit})`;
}

/** File name → mtime and size, of the files in `dir` (none when it does not exist). */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return files;
  }
  for (const name of names) {
    const s = statSync(join(dir, name));
    if (s.isFile()) files.set(name, `${s.mtimeMs}:${s.size}`);
  }
  return files;
}

export interface SetupResult {
  dir: string;
  /** The files the installer wrote, by name. */
  installed: string[];
  bytes: number;
}

/** Runs onnxruntime-node's installer for the CUDA 12 provider and says in one line what it wrote. */
export async function setupCuda(world: SetupWorld, out: Output): Promise<SetupResult> {
  if (!cudaPlatform(world.platform, world.arch)) throw new Error(`${cudaPlatformProblem(world.platform, world.arch)}: there is no CUDA provider to install`);
  const dir = binaryDir(world.packageDir, world.platform, world.arch);
  const before = snapshot(dir);
  out.note(`Installing ONNX Runtime's CUDA 12 provider with onnxruntime-node's installer (downloads a few hundred MB from api.nuget.org)…`);
  const r = await world.spawn(world.node, ['script/install.js', INSTALL_ARG], {
    cwd: world.packageDir,
    env: installerEnv(world.env),
    onLine: (line) => {
      if (line.trim() !== '') out.note(line);
    },
  });
  if (r.code !== 0) throw new Error(installerFailure(r));
  // What it printed to stderr on success is a warning worth passing on.
  for (const line of r.stderr.split('\n')) if (line.trim() !== '') out.note(line);
  const after = snapshot(dir);
  const installed = [...after.keys()].filter((name) => after.get(name) !== before.get(name)).sort();
  if (!installed.includes(CUDA_PROVIDER_LIB)) throw new Error(`onnxruntime-node's CUDA installer finished without writing ${CUDA_PROVIDER_LIB} in ${dir}`);
  const bytes = installed.reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
  out.summary({ ok: true, dir, installed, bytes }, `installed ${installed.join(', ')} (${(bytes / 1e6).toFixed(0)} MB) in ${dir}; --device cuda uses them where CUDA 12 and cuDNN 9 are installed`);
  return { dir, installed, bytes };
}

/** Spawns a process with its stdout read line by line and its stderr collected. */
export const spawnLines: SpawnFn = (command, args, { cwd, env, onLine }) =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    createInterface({ input: child.stdout }).on('line', onLine);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });

export const thisMachine = (): SetupWorld => ({
  platform: process.platform,
  arch: process.arch,
  packageDir: onnxruntimeNodeDir(),
  env: process.env,
  node: process.execPath,
  spawn: spawnLines,
});

export function registerSetupCommand(program: Command, guarded: Guard): void {
  const setup = program.command('setup').description('install optional parts that npm ci leaves out');
  setup
    .command('cuda')
    .description("install ONNX Runtime's CUDA 12 provider (Linux x64, NVIDIA GPU; downloaded from NuGet by onnxruntime-node's installer)")
    .option('--json', 'one JSON object per line')
    .action(
      guarded(async (o: { json?: boolean }) => void (await setupCuda(thisMachine(), makeOutput(o.json ?? false)))),
    );
}
