// Whatever way an upload to the local blob store ends (stored, refused, cut off by the client,
// malformed, too large, stalled), it leaves no temporary file in the store's directory and no
// file handle open into it, for whole blobs and for parts of uploads in parts alike.
// The real orchestrator runs in this process, so the server's file descriptors are this
// process's own (read from /proc/self/fd); it is spoken to over raw sockets, to end each upload
// exactly as a broken or hostile client would. Each check polls, within a bounded time, until
// the server has settled. The endings run against a server with the default upload deadline
// (60 s, far beyond the checks' bound: the deadline cannot be what cleans up after them); the
// stalls against a second one with a deadline of 0.4 s.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readlink, realpath, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ErrorBodySchema } from '../../orchestrator-client/protocol.ts';
import { uploadToUrl } from '../../orchestrator-client/transfer.ts';
import { type Orchestrator, startOrchestrator } from '../../orchestrator/service.ts';
import { LocalBlobStore } from '../../orchestrator/storage/local.ts';
import { type HostileResponse, parseRawResponse } from '../helpers/hostile-http.ts';

/** The upload deadline of the second server: an upload that delivers no byte for this long is aborted. */
const IDLE_MS = 400;
/** How long a server may take to settle after an upload ends (generous: the machine may be busy). */
const SETTLE_MS = 5000;
/** Every URL here may take this many bytes: the part size, and the limit of whole-blob URLs. */
const MAX = 4096;

interface Server {
  orch: Orchestrator;
  port: number;
  /** The store's directory, resolved as /proc/self/fd shows it. */
  blobs: string;
  /** Signs URLs for the server's store (same directory and URL key); a guest, so it never sweeps uploads in flight. */
  signer: LocalBlobStore;
}

let dir = '';
/** The default upload deadline. */
let main: Server;
/** An upload deadline of IDLE_MS. */
let quick: Server;

async function startServer(name: string, uploadIdleMs?: number): Promise<Server> {
  const orch = await startOrchestrator({ db: `sqlite:${join(dir, `${name}.db`)}`, storage: `local:${join(dir, name)}`, partBytes: MAX, uploadIdleMs, reapIntervalMs: 3_600_000 });
  const blobs = await realpath(join(dir, name));
  const secret = (await orch.database.db.selectFrom('kv').select('value').where('key', '=', 'local_blob_secret').executeTakeFirstOrThrow()).value;
  const signer = new LocalBlobStore({ dir: blobs, secret: Buffer.from(secret, 'hex'), baseUrl: orch.url, partBytes: MAX, role: 'guest' });
  // These URLs belong to no lease; the write gate (tested in write-grants.test.ts) is opened so
  // that what is tested here is the upload's lifecycle alone.
  assert.ok(orch.store instanceof LocalBlobStore);
  orch.store.setWriteGate(async () => null);
  return { orch, port: Number(new URL(orch.url).port), blobs, signer };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tah-upload-aborts-'));
  main = await startServer('main');
  quick = await startServer('quick', IDLE_MS);
});

after(async () => {
  await main?.orch.close();
  await quick?.orch.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---- what is left in the store ----

/** Temporary upload files of both servers' stores, at their top and inside uploads in parts. */
async function allTempFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const { blobs } of [main, quick]) {
    for (const e of await readdir(blobs, { withFileTypes: true, recursive: true })) {
      if (e.isFile() && e.name.startsWith('~upload-') && e.name.endsWith('.part')) out.push(relative(dir, join(e.parentPath, e.name)));
    }
  }
  return out.sort();
}

/** This process's open file descriptors that point into either store's directory. */
async function allOpenHandles(): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => null); // closed since the listing
    if (target !== null && [main, quick].some((s) => target.startsWith(s.blobs + sep))) out.push(`${fd} → ${relative(dir, target)}`);
  }
  return out.sort();
}

// What an earlier test left (when one fails) is not counted against the next: each test counts
// what appeared since it began, and the last test counts everything.
let leftBefore = new Set<string>();
beforeEach(async () => {
  leftBefore = new Set([...(await allTempFiles()), ...(await allOpenHandles())]);
});
const tempFiles = async (): Promise<string[]> => (await allTempFiles()).filter((f) => !leftBefore.has(f));
const openHandles = async (): Promise<string[]> => (await allOpenHandles()).filter((h) => !leftBefore.has(h));

/** Polls until `check` answers something other than undefined, or fails after `withinMs` saying `what` and the last state seen. */
async function until<T>(what: string, check: () => Promise<T | undefined>, describeLast: () => Promise<string>, withinMs = SETTLE_MS): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms (${await describeLast()})`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const state = async (): Promise<string> => `temporary files: [${(await tempFiles()).join(', ')}], open handles: [${(await openHandles()).join(', ')}]`;

/** Waits until the stores hold exactly `temps` temporary files and `handles` open handles (besides those an earlier test left). */
async function storeHolds(temps: number, handles: number, what: string): Promise<void> {
  await until(what, async () => ((await tempFiles()).length === temps && (await openHandles()).length === handles ? true : undefined), state);
}

const settled = (what: string): Promise<void> => storeHolds(0, 0, `${what}: the store should be left with no temporary file and no open handle`);
/** The upload is under way: the server has opened its temporary file. */
const underWay = (what: string): Promise<void> => storeHolds(1, 1, `${what}: the upload should be under way (one temporary file, one handle)`);

// ---- a client that writes exactly what it is told ----

class Conn {
  private readonly chunks: Buffer[] = [];
  /** Whether the server has closed (or reset) the connection. */
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (c: Buffer) => this.chunks.push(c));
    socket.on('error', () => {}); // the server may reset a connection it gave up on
    socket.on('close', () => (this.closed = true));
    socket.on('end', () => (this.closed = true));
  }

  static open(port: number): Promise<Conn> {
    return new Promise((resolve, reject) => {
      // Half-open allowed: the connection stays open from this end when the server ends its own, as a hostile client's would.
      const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(new Conn(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: string | Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** The first whole response the server sent. */
  answer(what: string, withinMs = SETTLE_MS): Promise<HostileResponse> {
    return until(
      `${what}: the server should answer`,
      async () => {
        const r = parseRawResponse(Buffer.concat(this.chunks));
        const length = Number(r?.headers['content-length'] ?? NaN);
        return r && r.body.length === length ? r : undefined;
      },
      async () => `received ${JSON.stringify(Buffer.concat(this.chunks).subarray(0, 200).toString('latin1'))}, closed: ${this.closed}`,
      withinMs,
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

const head = (url: string, framing: string): string => {
  const u = new URL(url);
  return `PUT ${u.pathname}${u.search} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\n${framing}\r\n\r\n`;
};
const withLength = (url: string, length: number): string => head(url, `content-length: ${length}`);
const chunked = (url: string): string => head(url, 'transfer-encoding: chunked');
const chunk = (data: Uint8Array): Buffer => Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);

function assertEnvelope(r: HostileResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body.toString('utf8').slice(0, 200)}`);
  const parsed = ErrorBodySchema.safeParse(r.json);
  assert.ok(parsed.success, `not the error envelope: ${r.body.toString('utf8').slice(0, 200)}`);
  assert.equal(parsed.data.error.code, code);
  if (message) assert.match(parsed.data.error.message, message);
}

/** Runs `body` on a fresh connection to `server` and closes it afterwards, whatever happens. */
async function withConn(server: Server, body: (c: Conn) => Promise<void>): Promise<void> {
  const c = await Conn.open(server.port);
  try {
    await body(c);
  } finally {
    c.close();
  }
}

// ---- every ending, for a whole blob and for a part ----

interface Target {
  /** A fresh URL for up to MAX bytes on `server`. */
  url(server: Server, name: string): Promise<string>;
  /** Whether nothing was stored under that URL. */
  nothingStored(server: Server, url: string): Promise<boolean>;
}

const keyOf = (url: string): string => new URL(url).pathname.slice('/v1/blobs/'.length);

const targets: Record<string, Target> = {
  'a whole blob': {
    url: (server, name) => server.signer.presign('put', `aborts/${name}`, { expiresInS: 300, maxBytes: MAX }),
    nothingStored: async (server, url) => (await server.signer.head(keyOf(url))) === null,
  },
  'a part of an upload in parts': {
    url: async (server, name) => (await server.signer.startMultipart(`aborts/parts/${name}`, { expiresInS: 300, maxBytes: 3 * MAX })).urls[0],
    // Part 1 would be stored as the file '1' in the upload's directory.
    nothingStored: async (server, url) => {
      const upload = new URL(url).searchParams.get('upload')!;
      return !(await readdir(join(server.blobs, `~multipart-${upload}`))).includes('1');
    },
  },
};

for (const [what, t] of Object.entries(targets)) {
  describe(`${what}: every ending leaves nothing behind`, () => {
    test('the client resets the connection mid-body', async () => {
      const url = await t.url(main, 'reset');
      await withConn(main, async (c) => {
        await c.send(withLength(url, MAX) + 'x'.repeat(1000));
        await underWay('reset');
        c.socket.resetAndDestroy();
        await settled('reset');
      });
      assert.ok(await t.nothingStored(main, url));
    });

    test('the client half-closes mid-body (and waits for an answer)', async () => {
      const url = await t.url(main, 'half-close');
      await withConn(main, async (c) => {
        await c.send(withLength(url, MAX) + 'x'.repeat(1000));
        await underWay('half-close');
        c.socket.end();
        await settled('half-close');
        assertEnvelope(await c.answer('half-close'), 400, 'bad_request');
      });
      assert.ok(await t.nothingStored(main, url));
    });

    test('a short body: fewer bytes than the Content-Length, then the connection closes', async () => {
      const url = await t.url(main, 'short');
      await withConn(main, async (c) => {
        await c.send(withLength(url, 100) + 'x'.repeat(10));
        await underWay('short');
        c.close();
        await settled('short');
      });
      assert.ok(await t.nothingStored(main, url));
    });

    test('the connection closes before any byte of the body, while the server waits for it', async () => {
      const url = await t.url(main, 'no-body');
      await withConn(main, async (c) => {
        await c.send(withLength(url, 100));
        await underWay('no body');
        c.close();
        await settled('no body');
      });
    });

    test('the connection closes right after the headers, before the server has opened its temporary file (20 tries)', async () => {
      for (let i = 0; i < 20; i++) {
        const url = await t.url(main, `early-${i}`);
        await withConn(main, async (c) => {
          await c.send(withLength(url, 100));
        });
        await settled(`try ${i}`);
      }
    });

    for (const [i, [name, garbage]] of ([
      ['garbage right after the headers', 'this is not a chunk size\r\n\r\n'],
      ['a bad chunk size after a good chunk', Buffer.concat([chunk(Buffer.from('hello')), Buffer.from('zz\r\nxx\r\n')])],
      ['chunk data longer than its size says', Buffer.from('5\r\nhello, too long\r\n0\r\n\r\n')],
    ] as const).entries()) {
      test(`a bad chunked encoding: ${name} (the client keeps the connection open)`, async () => {
        const url = await t.url(main, `garbage-${i}`);
        await withConn(main, async (c) => {
          await c.send(chunked(url));
          await underWay(name);
          await c.send(garbage);
          await settled(name);
          assertEnvelope(await c.answer(name), 400, 'bad_request');
        });
        assert.ok(await t.nothingStored(main, url));
      });
    }

    for (const [i, how] of (['sent once the upload is under way', 'sent in one write with the headers', 'sent in one write with the headers, then the connection closes'] as const).entries()) {
      test(`a body longer than its Content-Length, the rest pipelined garbage, ${how}`, async () => {
        const url = await t.url(main, `long-${i}`);
        const body = randomBytes(100);
        const garbage = Buffer.from('and more bytes that are no request at all\r\n\r\n');
        await withConn(main, async (c) => {
          if (how === 'sent once the upload is under way') {
            await c.send(withLength(url, 100));
            await underWay('long body');
            await c.send(Buffer.concat([body, garbage]));
          } else await c.send(Buffer.concat([Buffer.from(withLength(url, 100)), body, garbage]));
          if (how.endsWith('closes')) c.close();
          else {
            // The garbage is refused as the next request. (Whether the first one was read whole
            // and stored before the connection closed is a race, and either is fine.)
            assertEnvelope(await c.answer('long body'), 400, 'bad_request');
          }
          await settled('long body');
        });
      });
    }

    test('a Content-Length over the limit is refused with 413 before any temporary file', async () => {
      const url = await t.url(main, 'declared');
      await withConn(main, async (c) => {
        await c.send(withLength(url, MAX + 1) + 'x'.repeat(100));
        assertEnvelope(await c.answer('declared too large'), 413, 'payload_too_large');
        await settled('declared too large');
      });
      assert.ok(await t.nothingStored(main, url));
    });

    test('a chunked body that grows past the limit is cut off with 413 (the client keeps the connection open)', async () => {
      const url = await t.url(main, 'grows');
      await withConn(main, async (c) => {
        await c.send(chunked(url));
        await underWay('grows');
        await c.send(chunk(randomBytes(MAX / 2)));
        await c.send(chunk(randomBytes(MAX / 2 + 1)));
        assertEnvelope(await c.answer('grows'), 413, 'payload_too_large');
        await settled('grows');
      });
      assert.ok(await t.nothingStored(main, url));
    });

    test(`a client that sends a few bytes and stalls is cut off after ${IDLE_MS} ms without a byte (408)`, async () => {
      const url = await t.url(quick, 'stall');
      await withConn(quick, async (c) => {
        await c.send(withLength(url, 100) + 'x'.repeat(5));
        await underWay('stall');
        const since = Date.now();
        assertEnvelope(await c.answer('stall', IDLE_MS + SETTLE_MS), 408, 'bad_request', /no byte .* for 0\.4 s/);
        assert.ok(Date.now() - since >= IDLE_MS * 0.9, `cut off after ${Date.now() - since} ms, before the deadline`);
        await settled('stall');
        await until('stall: the server should close the connection', async () => (c.closed ? true : undefined), async () => 'still open');
      });
      assert.ok(await t.nothingStored(quick, url));
    });

    test('a client that sends slowly but steadily is not cut off, and its upload is stored byte for byte', async () => {
      const url = await t.url(quick, 'trickle');
      const body = randomBytes(8);
      await withConn(quick, async (c) => {
        await c.send(withLength(url, body.length));
        // Twice the deadline in all, a quarter of it between two bytes.
        for (const byte of body) {
          await new Promise((r) => setTimeout(r, IDLE_MS / 4));
          await c.send(Buffer.from([byte]));
        }
        assert.equal((await c.answer('trickle')).status, 200);
        await settled('trickle');
      });
      assert.ok(!(await t.nothingStored(quick, url)));
    });

    test('a whole upload still works, byte for byte, and leaves nothing temporary', async () => {
      const url = await t.url(main, 'whole');
      const body = new Uint8Array(randomBytes(MAX));
      const { etag } = await uploadToUrl(url, body);
      await settled('whole');
      if (what !== 'a whole blob') {
        assert.ok(!(await t.nothingStored(main, url)));
        await main.signer.completeMultipart(keyOf(url), new URL(url).searchParams.get('upload')!, [{ number: 1, etag: etag! }]);
        await settled('whole, joined');
      }
      assert.deepEqual(await main.signer.get(keyOf(url)), body);
    });
  });
}

test('at the end, no temporary file and no handle into the store is left at all', async () => {
  leftBefore = new Set();
  await settled('all the tests');
});
