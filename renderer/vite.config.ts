// Builds the renderer (renderer/index.html and src/) into dist/renderer at the repository root.
// Assets are referenced as /assets/…: every host (Electron's app://ui/, the browser host, the
// orchestrator's dashboard) serves the renderer at its origin's root. No React plugin: esbuild's
// automatic JSX runtime is all the build needs.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: '/',
  publicDir: false,
  esbuild: { jsx: 'automatic', jsxImportSource: 'react' },
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // One small bundle; a warning past 300 kB (minified, not gzipped) would still be far under the budget.
    chunkSizeWarningLimit: 600,
    modulePreload: { polyfill: false },
  },
});
