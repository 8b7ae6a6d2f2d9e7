// An upload's life on disk: its body streams into a temporary file that is moved into place only
// when complete, synced and within its limit. However else it ends — cut off or reset by the
// client, malformed, over the limit, or stalled past the idle deadline — the file handle is
// closed and the temporary file removed: spool owns both from the moment the file is opened.
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { unlink } from 'node:fs/promises';
import { finished, Writable } from 'node:stream';
import type { Readable } from 'node:stream';

export class TooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`the body exceeds the limit of ${maxBytes} bytes`);
  }
}

export class AbortedError extends Error {
  constructor(cause?: Error) {
    super('the upload was aborted (the body ended early or the connection failed)', { cause });
  }
}

export class StalledError extends Error {
  constructor(readonly idleMs: number) {
    super(`the upload stalled: no byte of the body arrived for ${idleMs / 1000} s`);
  }
}

export interface DrainLimits {
  maxBytes: number;
  /** Fails when no byte arrives (and no write completes) for this long. */
  idleMs: number;
  /** Also fed every byte. */
  hash?: Hash;
}

/**
 * Streams `body` into the temporary file `tmp`, just opened as `fh` (spool owns both from here),
 * and, once it is complete and synced, calls `place` to move it into place. Whatever ends the
 * upload, the handle is closed and the temporary file, unless placed, is removed.
 */
export async function spool({ fh, tmp }: { fh: FileHandle; tmp: string }, body: Readable, limits: DrainLimits, place: () => Promise<void>): Promise<number> {
  let placed = false;
  try {
    const bytes = await drain(body, fh, limits);
    await fh.sync();
    await fh.close();
    await place();
    placed = true;
    return bytes;
  } finally {
    await fh.close().catch(() => {}); // a no-op when already closed; else it waits for a write in flight
    if (!placed) await unlink(tmp).catch(() => {});
  }
}

/**
 * Copies `body` into `fh`, settling exactly once however the body ends: complete; ended early,
 * failed or closed (even before drain was called: the file is opened first, and a client may be
 * gone by then); past `maxBytes`; or silent for `idleMs`. On failure it stops reading but leaves
 * the body (and its connection) to the caller, so that a 413 or 408 can still be answered.
 */
function drain(body: Readable, fh: FileHandle, { maxBytes, idleMs, hash }: DrainLimits): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    let total = 0;
    let done = false;
    const sink = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _encoding, callback) {
        idle.refresh();
        total += chunk.length;
        if (total > maxBytes) return callback(new TooLargeError(maxBytes));
        hash?.update(chunk);
        fh.write(chunk).then(() => {
          idle.refresh(); // a slow disk is not a stalled client
          callback();
        }, callback);
      },
    });
    const idle = setTimeout(() => settle(new StalledError(idleMs)), idleMs);
    // finished() reports a body that already ended, failed or closed, not only one that does so later.
    const stopWatching = finished(body, { writable: false }, (err) => {
      if (err) settle(new AbortedError(err));
    });
    const settle = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      stopWatching();
      if (err) {
        body.unpipe(sink);
        sink.destroy();
        reject(err);
      } else resolvePromise(total);
    };
    sink.on('error', (err) => settle(err));
    sink.on('finish', () => settle(null));
    body.pipe(sink);
  });
}
