// Where `npm run build:renderer` leaves the UI: the app's pages for `tah app`, and the runs'
// public dashboard for `tah orchestrator` and `tah swarm`.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUILT_UI = fileURLToPath(new URL('../../dist/renderer', import.meta.url));

/** The folder given, else the built renderer when there is one, else none. */
export function uiDir(given: string | undefined): string | undefined {
  if (given) return resolve(given);
  return existsSync(join(BUILT_UI, 'index.html')) ? BUILT_UI : undefined;
}
