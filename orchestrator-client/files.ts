// Small file helpers for the client side (key files). The worker depends on this package, not the
// other way round, so this does not borrow the worker's checkpoint writer.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /** Permission bits of the new file, applied to the temporary file before any byte is written. */
  mode?: number;
  /** Replace an existing file (default). With false, an existing file makes the write fail with EEXIST. */
  overwrite?: boolean;
  /** Mode of any parent folders that have to be created; absent: parents must exist. */
  createParents?: number;
}

/**
 * Writes a file so that readers see either the old content or the whole new content: a temporary
 * file beside it (created with `mode` from the start, so a secret is never readable by others, not
 * even briefly), flushed to disk, then moved into place.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): Promise<void> {
  const mode = opts.mode ?? 0o644;
  const dir = dirname(path);
  if (opts.createParents !== undefined) await mkdir(dir, { recursive: true, mode: opts.createParents });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      // The umask can only take bits away; set the exact mode (e.g. a umask of 077 with 0o644).
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.overwrite ?? true) {
      await rename(tmp, path);
    } else {
      await placeWithoutOverwriting(tmp, path);
    }
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // Make the rename itself durable; not every platform lets a directory be fsynced.
  await open(dir, 'r').then(async (d) => d.sync().finally(() => d.close())).catch(() => {});
}

/**
 * Moves `tmp` to `path` only if `path` does not exist, atomically: a hard link fails with EEXIST
 * when the name is taken, which closes the gap between "is it there?" and "rename". File systems
 * without hard links fall back to that check and a rename.
 */
async function placeWithoutOverwriting(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw e;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EXDEV') throw e;
    const exists = await open(path, 'r').then(async (f) => (await f.close(), true), () => false);
    if (exists) throw Object.assign(new Error(`EEXIST: file already exists, '${path}'`), { code: 'EEXIST', path });
    await rename(tmp, path);
    return;
  }
  await unlink(tmp);
}
