// `tah setup cuda` without a network: the installer is a fake spawn that writes what the real one
// would into a temporary package folder, or fails the way the real one does.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type SetupWorld, type SpawnFn, type Spawned, INSTALL_ARG, installerEnv, installerFailure, setupCuda, spawnLines } from '../../cli/commands/setup.ts';
import type { Output } from '../../cli/output.ts';
import { onnxruntimeNodeDir } from '../../worker/engine/cuda.ts';
import { tempDir } from './run-tah.ts';

/** An Output that keeps what it was told. */
function recorder(): Output & { notes: string[]; summaries: { fields: Record<string, unknown>; human: string }[] } {
  const notes: string[] = [];
  const summaries: { fields: Record<string, unknown>; human: string }[] = [];
  return {
    json: false,
    notes,
    summaries,
    event: () => {},
    note: (m) => void notes.push(m),
    progress: () => ({ update: () => {}, stop: () => {} }),
    summary: (fields, human) => void summaries.push({ fields, human }),
  };
}

interface Call {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** A spawn that records its call, prints `lines`, runs `effect` and ends as `result`. */
function fakeSpawn(calls: Call[], result: Spawned, lines: string[] = [], effect: () => Promise<void> = async () => {}): SpawnFn {
  return async (command, args, { cwd, env, onLine }) => {
    calls.push({ command, args, cwd, env });
    for (const l of lines) onLine(l);
    await effect();
    return result;
  };
}

const NUGET_CRASH = `node:internal/process/promises:391
    triggerUncaughtException(err, true /* fromPromise */);
    ^

Error: getaddrinfo ENOTFOUND api.nuget.org
    at GetAddrInfoReqWrap.onlookupall [as oncomplete] (node:dns:122:26) {
  errno: -3008,
  code: 'ENOTFOUND',
  syscall: 'getaddrinfo',
  hostname: 'api.nuget.org'
}

Node.js v20.20.2
`;

const PROVIDERS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'];

let root = '';
let cleanup = async (): Promise<void> => {};
let n = 0;
before(async () => {
  ({ dir: root, cleanup } = await tempDir('setup'));
});
after(() => cleanup());

/** A package folder holding the CPU runtime, as npm ci leaves it. */
async function packageDir(): Promise<{ pkg: string; bin: string }> {
  const pkg = join(root, `onnxruntime-node-${n++}`);
  const bin = join(pkg, 'bin', 'napi-v6', 'linux', 'x64');
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, 'libonnxruntime.so.1'), 'cpu runtime');
  await writeFile(join(bin, 'onnxruntime_binding.node'), 'binding');
  return { pkg, bin };
}

const world = (pkg: string, spawn: SpawnFn, over: Partial<SetupWorld> = {}): SetupWorld => ({ platform: 'linux', arch: 'x64', packageDir: pkg, env: {}, node: '/opt/node/bin/node', spawn, ...over });

test("runs onnxruntime-node's installer, forced, from the package's folder, and says in one line what it wrote", async () => {
  const { pkg, bin } = await packageDir();
  const calls: Call[] = [];
  const lines = ['Downloading https://api.nuget.org/v3-flatcontainer/microsoft.ml.onnxruntime.gpu.linux/1.30.0/microsoft.ml.onnxruntime.gpu.linux.1.30.0.nupkg', 'Extracting runtimes/linux-x64/native/libonnxruntime_providers_cuda.so to …'];
  const spawn = fakeSpawn(calls, { code: 0, signal: null, stderr: '' }, lines, async () => {
    for (const [i, f] of PROVIDERS.entries()) await writeFile(join(bin, f), Buffer.alloc(1_000_000 * (i + 1)));
  });
  const out = recorder();
  const r = await setupCuda(world(pkg, spawn, { env: { ONNXRUNTIME_NODE_INSTALL: 'skip', PATH: '/usr/bin' } }), out);

  assert.equal(calls.length, 1);
  assert.equal(calls[0].command, '/opt/node/bin/node');
  assert.deepEqual(calls[0].args, ['script/install.js', '--onnxruntime-node-install']);
  assert.equal(calls[0].cwd, pkg);
  // A leftover skip in the environment would win over the flag.
  assert.equal(calls[0].env.ONNXRUNTIME_NODE_INSTALL, 'true');
  assert.equal(calls[0].env.PATH, '/usr/bin');
  // The installer's progress is shown as it comes.
  for (const l of lines) assert.ok(out.notes.includes(l), `shown: ${l}`);

  assert.deepEqual(r.installed, PROVIDERS, 'the files it wrote, not the CPU runtime that was there');
  assert.equal(r.dir, bin);
  assert.equal(r.bytes, 6_000_000);
  assert.equal(out.summaries.length, 1);
  const { fields, human } = out.summaries[0];
  assert.deepEqual(fields, { ok: true, dir: bin, installed: PROVIDERS, bytes: 6_000_000 });
  assert.equal(human, `installed ${PROVIDERS.join(', ')} (6 MB) in ${bin}; --device cuda uses them where CUDA 12 and cuDNN 9 are installed`);
  assert.ok(!human.includes('\n'));
});

test('run again, it reports the files it wrote again', async () => {
  const { pkg, bin } = await packageDir();
  for (const f of PROVIDERS) await writeFile(join(bin, f), 'old');
  const spawn = fakeSpawn([], { code: 0, signal: null, stderr: '' }, [], async () => {
    for (const f of PROVIDERS) await writeFile(join(bin, f), 'new!');
  });
  assert.deepEqual((await setupCuda(world(pkg, spawn), recorder())).installed, PROVIDERS);
});

test('refuses at once on a platform without a CUDA provider', async () => {
  const calls: Call[] = [];
  for (const [platform, arch] of [['darwin', 'arm64'], ['linux', 'arm64'], ['win32', 'x64']]) {
    const out = recorder();
    await assert.rejects(setupCuda(world('/nowhere', fakeSpawn(calls, { code: 0, signal: null, stderr: '' }), { platform, arch }), out), (e: Error) => {
      assert.equal(e.message, `onnxruntime-node offers CUDA on Linux x64 only, this is ${platform} ${arch}: there is no CUDA provider to install`);
      return true;
    });
    assert.deepEqual(out.notes, []);
  }
  assert.equal(calls.length, 0, 'nothing is run');
});

test('an installer that cannot reach NuGet fails with one line that says so and how to use a proxy', async () => {
  const { pkg } = await packageDir();
  const out = recorder();
  await assert.rejects(setupCuda(world(pkg, fakeSpawn([], { code: 1, signal: null, stderr: NUGET_CRASH })), out), (e: Error) => {
    assert.equal(e.message, 'cannot download the CUDA provider from api.nuget.org (getaddrinfo ENOTFOUND api.nuget.org); behind a proxy, set HTTPS_PROXY (or GLOBAL_AGENT_HTTPS_PROXY) and run it again');
    return true;
  });
  assert.deepEqual(out.summaries, []);
});

test('other installer failures name its error and exit', () => {
  const stderr = '/x/install-utils.js:17\n          reject(new Error(...));\n          ^\n\nError: Failed to download from https://api.nuget.org/x.nupkg. HTTP status code = 404\n    at ClientRequest.<anonymous> (/x/install-utils.js:17:18)\n\nNode.js v20.20.2\n';
  assert.equal(installerFailure({ code: 1, signal: null, stderr }), "onnxruntime-node's CUDA installer failed (Failed to download from https://api.nuget.org/x.nupkg. HTTP status code = 404; exit code 1)");
  assert.equal(installerFailure({ code: null, signal: 'SIGINT', stderr: '' }), "onnxruntime-node's CUDA installer failed (stopped by SIGINT)");
  assert.equal(installerFailure({ code: 1, signal: null, stderr: 'Error: connect ECONNREFUSED 10.0.0.1:3128\n' }), 'cannot download the CUDA provider from api.nuget.org (connect ECONNREFUSED 10.0.0.1:3128); behind a proxy, set HTTPS_PROXY (or GLOBAL_AGENT_HTTPS_PROXY) and run it again');
});

test('an installer that succeeds without writing the CUDA provider is an error', async () => {
  const { pkg, bin } = await packageDir();
  await assert.rejects(setupCuda(world(pkg, fakeSpawn([], { code: 0, signal: null, stderr: '' })), recorder()), new RegExp(`finished without writing libonnxruntime_providers_cuda\\.so in ${bin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('the usual proxy variables reach the installer under the names it reads', () => {
  const env = installerEnv({ HTTPS_PROXY: 'http://proxy:3128', no_proxy: 'localhost', ONNXRUNTIME_NODE_INSTALL: 'skip' });
  assert.equal(env.GLOBAL_AGENT_HTTPS_PROXY, 'http://proxy:3128');
  assert.equal(env.GLOBAL_AGENT_NO_PROXY, 'localhost');
  assert.equal(env.GLOBAL_AGENT_HTTP_PROXY, undefined);
  assert.equal(env.ONNXRUNTIME_NODE_INSTALL, 'true');
  // Its own variable, when set, is left as it is.
  assert.equal(installerEnv({ HTTPS_PROXY: 'http://a', GLOBAL_AGENT_HTTPS_PROXY: 'http://b' }).GLOBAL_AGENT_HTTPS_PROXY, 'http://b');
});

test("the installed onnxruntime-node reads the switch as 'force the installation', whatever npm and a leftover skip say", async () => {
  // Its own parser, run as the installer would be: from the package's folder, with the flag, and
  // with what npx puts in the environment (it makes the installer exit at once unless forced).
  const env = installerEnv({ ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_onnxruntime_node_install: 'skip', npm_config_local_prefix: root, npm_package_json: join(root, 'package.json') });
  const lines: string[] = [];
  const code = "console.log(JSON.stringify(require('./script/install-utils.js').parseInstallFlag() ?? null))";
  const r = await spawnLines(process.execPath, ['-e', code, '--', INSTALL_ARG], { cwd: onnxruntimeNodeDir(), env, onLine: (l) => void lines.push(l) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines, ['true']);
  // The metadata: on Linux x64, what a forced installation fetches is the CUDA 12 provider only.
  const require = createRequire(import.meta.url);
  const metadata = require(join(onnxruntimeNodeDir(), 'script', 'install-metadata.js')) as { requirements: Record<string, string[]>; manifests: Record<string, Record<string, unknown>> };
  assert.deepEqual(metadata.requirements['linux/x64'], ['cuda12']);
  assert.ok(Object.keys(metadata.manifests['linux/x64:cuda12']).includes('./libonnxruntime_providers_cuda.so'));
});

test('the real spawn hands over stdout line by line and keeps stderr and the exit code', async () => {
  const lines: string[] = [];
  const r = await spawnLines(process.execPath, ['-e', 'console.log("one"); console.log("two"); console.error("Error: bad"); process.exit(3)'], { cwd: root, env: process.env, onLine: (l) => void lines.push(l) });
  assert.deepEqual(lines, ['one', 'two']);
  assert.deepEqual(r, { code: 3, signal: null, stderr: 'Error: bad\n' });
});
