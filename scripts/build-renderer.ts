// Builds the renderer with Vite (renderer/vite.config.ts) into the folder given, and reports the
// size of its JavaScript gzipped: the budget is 300 KB. Used by `npm run build:app` and the tests;
// `npm run build:renderer` is the same build into dist/renderer.
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

export const RENDERER_JS_BUDGET_GZ = 300 * 1024;

export async function buildRenderer(outDir: string): Promise<{ dir: string; jsBytes: number; jsGzipBytes: number }> {
  const root = new URL('..', import.meta.url).pathname;
  const dir = resolve(outDir);
  await build({ configFile: join(root, 'renderer/vite.config.ts'), logLevel: 'warn', build: { outDir: dir, emptyOutDir: true } });
  let jsBytes = 0;
  let jsGzipBytes = 0;
  for (const f of await readdir(join(dir, 'assets'))) {
    if (!f.endsWith('.js')) continue;
    const code = await readFile(join(dir, 'assets', f));
    jsBytes += code.length;
    jsGzipBytes += gzipSync(code, { level: 9 }).length;
  }
  return { dir, jsBytes, jsGzipBytes };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { dir, jsBytes, jsGzipBytes } = await buildRenderer(process.argv[2] ?? 'dist/renderer');
  console.log(`renderer built in ${dir}: ${(jsBytes / 1024).toFixed(0)} KB of JavaScript, ${(jsGzipBytes / 1024).toFixed(0)} KB gzipped (budget ${RENDERER_JS_BUDGET_GZ / 1024} KB)`);
  if (jsGzipBytes > RENDERER_JS_BUDGET_GZ) process.exitCode = 1;
}
