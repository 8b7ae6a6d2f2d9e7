// The state a request must not change, snapshotted to compare before and after: every table of a
// SQLite database, the files of a directory, and this process's open handles into it.
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { sql } from 'kysely';
import type { Db } from '../../orchestrator/db/open.ts';

/** Every table (found in sqlite_master, so nothing is left out) as JSON text, rows in rowid order; plus the schema itself. */
export async function snapshotDatabase(database: Db): Promise<Map<string, string>> {
  const master = await sql<{ type: string; name: string; sql: string | null }>`select type, name, sql from sqlite_master order by type, name`.execute(database.db);
  const out = new Map<string, string>([['sqlite_master', JSON.stringify(master.rows)]]);
  for (const { name } of master.rows.filter((r) => r.type === 'table')) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(name)} order by rowid`.execute(database.db);
    out.set(name, JSON.stringify(rows.rows));
  }
  return out;
}

/** Every file and directory under `root`, with sizes and modification times. */
export async function snapshotDir(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const s = await stat(join(d, e.name));
      out.push(`${rel}${e.name}${e.isDirectory() ? '/' : ''} ${s.size} ${s.mtimeMs}`);
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
    }
  };
  await walk(root, '');
  return out;
}

/** This process's open file descriptors that point into `root` (for a server running in this process). */
export async function handlesInto(root: string): Promise<string[]> {
  const real = await realpath(root);
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => null); // closed since the listing
    if (target !== null && target.startsWith(real + sep)) out.push(target.slice(real.length + 1));
  }
  return out;
}
