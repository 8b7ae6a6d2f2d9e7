// The built renderer served over HTTP: by the browser host (the app in a browser) and by the
// orchestrator (a run's public dashboard). One resolver, so both answer the same way: files under
// the root only, routes of the single-page app fall back to index.html, everything else is 404.
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';

export const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export type StaticFile = { status: 200; file: string; size: number; type: string } | { status: 403 | 404 };

/** The file a GET of `urlPath` (the URL's path, still percent-encoded) should answer with. */
export async function resolveStaticFile(dir: string, urlPath: string): Promise<StaticFile> {
  const root = resolve(dir);
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return { status: 404 };
  }
  if (path.includes('\0')) return { status: 404 };
  if (path.endsWith('/')) path += 'index.html';
  const file = normalize(join(root, path));
  if (file !== root && !file.startsWith(root + sep)) return { status: 403 };
  // A route of the single-page app is index.html (a run id may have a dot in it: /runs/demo.v2);
  // a missing asset, under /assets/ or of a type the renderer ships, is a 404.
  const asset = path.startsWith('/assets/') || Object.hasOwn(STATIC_TYPES, extname(path).toLowerCase());
  const target = (await stat(file).catch(() => null))?.isFile() ? file : asset ? null : join(root, 'index.html');
  const info = target ? await stat(target).catch(() => null) : null;
  if (!target || !info?.isFile()) return { status: 404 };
  return { status: 200, file: target, size: info.size, type: STATIC_TYPES[extname(target)] ?? 'application/octet-stream' };
}
