#!/usr/bin/env -S node --initial-old-space-size=256
// (The flag: MINER_NODE_FLAGS in worker/miner/host.ts says why; `tah miner` runs a miner.)
// The `tah` command. The project is TypeScript, run directly through tsx's loader, so that the
// CLI, the tests and the services all execute the same sources. When `npm run build:cli` (run
// before `npm start` and `npm test`) has bundled them and no source changed since, the bundle
// runs instead: it starts in a third of the time, which counts when a swarm starts a dozen
// processes. TAH_FROM_SOURCE=1 always runs the sources.
import { readFileSync, statSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const bundle = new URL('dist/cli/tah.mjs', root);

/** The bundle exists and is newer than every file it was built from. */
function bundleIsFresh() {
  if (process.env.TAH_FROM_SOURCE) return false;
  try {
    const built = statSync(bundle).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(new URL('dist/cli/inputs.json', root), 'utf8'));
    return Array.isArray(inputs) && inputs.length > 0 && inputs.every((f) => statSync(new URL(f, root)).mtimeMs <= built);
  } catch {
    return false;
  }
}

if (bundleIsFresh()) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/tah.ts');
}
