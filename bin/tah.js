#!/usr/bin/env -S node --initial-old-space-size=256
// (The flag: MINER_NODE_FLAGS in worker/miner/host.ts says why; `tah miner` runs a miner.)
// The `tah` command. The project is TypeScript run directly through tsx's loader, so that
// the CLI, the tests and the services all execute the same sources without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/tah.ts');
