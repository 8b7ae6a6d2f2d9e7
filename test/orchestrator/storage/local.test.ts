// The embedded blob store through a real server on 127.0.0.1: presigned URLs allow exactly one
// operation on exactly one key, until they expire, up to their size limit, and uploads that fail
// leave nothing in the directory.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { ErrorBodySchema } from '../../../orchestrator-client/protocol.ts';
import { BlobNotFoundError, MultipartError } from '../../../orchestrator/storage/blob-store.ts';
import { LocalBlobStore } from '../../../orchestrator/storage/local.ts';
import { parseRange, registerLocalBlobRoutes } from '../../../orchestrator/storage/local-routes.ts';
import { downloadFromUrl, uploadBlob, uploadToUrl } from '../../../orchestrator-client/transfer.ts';
import type { Upload } from '../../../orchestrator-client/protocol.ts';
import { openBlobStore } from '../../../orchestrator/storage/open.ts';
import { rawRequest, type RawResponse } from '../../helpers/raw-http.ts';

const T0 = 1_750_000_000_000;
let clock = T0;
let root = '';
let dir = '';
let store: LocalBlobStore;
const secret = randomBytes(32);
/** The same store with 1,000-byte parts (same directory and URL key: the server serves both). */
let parted: LocalBlobStore;
let app: FastifyInstance;
let port = 0;
/** Keys this file stores, to check the listing at the end. */
const written = new Set<string>();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tah-blobs-'));
  dir = join(root, 'blobs');
  store = new LocalBlobStore({ dir, secret, now: () => clock });
  // A server whose own body handling would refuse blobs: a 1 KiB limit and a JSON-only parser.
  app = Fastify({ bodyLimit: 1024 });
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, JSON.parse(body as string)));
  app.post('/echo', async (req) => req.body);
  registerLocalBlobRoutes(app, store);
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as AddressInfo).port;
  store.setBaseUrl(`http://127.0.0.1:${port}`);
  parted = new LocalBlobStore({ dir, secret, now: () => clock, partBytes: 1000, baseUrl: `http://127.0.0.1:${port}` });
});

after(async () => {
  await app?.close();
  await rm(root, { recursive: true, force: true });
});

/** Path and query of a URL, for raw requests. */
function target(url: string): string {
  const u = new URL(url);
  return u.pathname + u.search;
}

function assertError(res: RawResponse, status: number, code: string, message?: RegExp): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
  const parsed = ErrorBodySchema.safeParse(res.json);
  assert.ok(parsed.success, `not the error JSON format: ${res.body.toString('utf8').slice(0, 300)}`);
  assert.equal(parsed.data.error.code, code);
  if (message) assert.match(parsed.data.error.message, message);
}

/** Files in the store's directory, recursively, temporary ones included. */
async function filesIn(d = dir): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

/** Temporary files: everything with a '~' but the store's id. */
async function tempFiles(): Promise<string[]> {
  return (await filesIn()).filter((f) => f.includes('~') && f !== '~store-id');
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function putUrl(key: string, maxBytes = 16 * 2 ** 20): Promise<string> {
  return store.presign('put', key, { expiresInS: 60, maxBytes });
}

async function getUrl(key: string): Promise<string> {
  return store.presign('get', key, { expiresInS: 60 });
}

describe('round trips through presigned URLs', () => {
  for (const [name, size] of [
    ['one byte', 1],
    ['empty', 0],
    ['3 MiB', 3 * 2 ** 20 + 17],
  ] as const) {
    test(`${name}: PUT then GET returns the same bytes`, async () => {
      const key = `rt/${name.replace(/ /g, '-')}.safetensors`;
      const data = new Uint8Array(randomBytes(size));
      await uploadToUrl(await putUrl(key), data);
      written.add(key);
      assert.deepEqual(await store.head(key), { bytes: size });
      assert.deepEqual(await store.get(key), data);
      const url = await getUrl(key);
      assert.deepEqual(await downloadFromUrl(url, { maxBytes: size }), data);
      // In 1 MiB ranges, three at a time.
      assert.deepEqual(await downloadFromUrl(url, { maxBytes: size, partBytes: 2 ** 20, concurrency: 3 }), data);
      assert.deepEqual(await downloadFromUrl(url, { maxBytes: size, partBytes: Infinity }), data);
    });
  }

  test('a body sent as JSON (or with no content type) is still stored as bytes, past the server body limit', async () => {
    const key = 'rt/json-typed';
    const body = Buffer.from(JSON.stringify({ big: 'x'.repeat(4000) }));
    const res = await rawRequest({ port, method: 'PUT', path: target(await putUrl(key)), headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(Buffer.from(await store.get(key)), body);
    const untyped = await rawRequest({ port, method: 'PUT', path: target(await putUrl(key)), body: Buffer.from('abc') });
    assert.equal(untyped.status, 200, untyped.body.toString());
    assert.equal(Buffer.from(await store.get(key)).toString(), 'abc');
    written.add(key);
    // The rest of the server keeps its own parser and limit.
    const echo = await rawRequest({ port, method: 'POST', path: '/echo', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"a":1}') });
    assert.deepEqual(echo.json, { a: 1 });
  });

  test('store methods: put replaces atomically, delete is idempotent, a missing blob is null / BlobNotFoundError', async () => {
    await store.put('direct/a', new Uint8Array([1, 2, 3]));
    await store.put('direct/a', new Uint8Array([4, 5]));
    assert.deepEqual(await store.get('direct/a'), new Uint8Array([4, 5]));
    await store.delete('direct/a');
    await store.delete('direct/a');
    assert.equal(await store.head('direct/a'), null);
    await assert.rejects(store.get('direct/a'), BlobNotFoundError);
    assert.deepEqual(await tempFiles(), []);
  });

  test('a GET of a missing blob is 404', async () => {
    assertError(await rawRequest({ port, method: 'GET', path: target(await getUrl('nothing/here')) }), 404, 'not_found');
  });

  test('downloadFromUrl refuses a blob larger than maxBytes, ranged or not', async () => {
    const url = await getUrl('rt/3-MiB.safetensors');
    await assert.rejects(downloadFromUrl(url, { maxBytes: 2 ** 20 }), /more than the 1048576 allowed/);
    await assert.rejects(downloadFromUrl(url, { maxBytes: 2 ** 20, partBytes: Infinity }), /more than the 1048576 allowed/);
  });
});

describe('ranges', () => {
  const key = 'ranges/ten';
  const data = Buffer.from('0123456789');
  before(async () => {
    await store.put(key, data);
    written.add(key);
  });

  for (const [range, start, end] of [
    ['bytes=2-5', 2, 5],
    ['bytes=7-', 7, 9],
    ['bytes=-3', 7, 9],
    ['bytes=0-99', 0, 9],
    ['bytes=9-9', 9, 9],
  ] as const) {
    test(`${range} → 206 bytes ${start}-${end}/10`, async () => {
      const res = await rawRequest({ port, method: 'GET', path: target(await getUrl(key)), headers: { range } });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/10`);
      assert.equal(res.headers['content-length'], String(end - start + 1));
      assert.equal(res.body.toString(), data.subarray(start, end + 1).toString());
    });
  }

  for (const range of ['bytes=5-2', 'bytes=10-', 'bytes=10-20', 'bytes=-0', 'bytes=0-1,4-5', 'items=0-1', 'bytes=-', 'bytes=a-b']) {
    test(`${range} → 416`, async () => {
      const res = await rawRequest({ port, method: 'GET', path: target(await getUrl(key)), headers: { range } });
      assertError(res, 416, 'bad_request', /range/);
      assert.equal(res.headers['content-range'], 'bytes */10');
    });
  }

  test('any range of an empty blob → 416', async () => {
    assert.equal(parseRange('bytes=0-', 0), null);
    const res = await rawRequest({ port, method: 'GET', path: target(await getUrl('rt/empty.safetensors')), headers: { range: 'bytes=0-0' } });
    assertError(res, 416, 'bad_request');
  });

  test('HEAD with a GET URL gives the size without the body', async () => {
    const res = await rawRequest({ port, method: 'HEAD', path: target(await getUrl(key)) });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], '10');
    assert.equal(res.body.length, 0);
  });
});

describe('what a URL allows', () => {
  const A = 'keys/a';
  const B = 'keys/b';
  before(async () => {
    await store.put(A, Buffer.from('secret A'));
    await store.put(B, Buffer.from('secret B'));
    written.add(A).add(B);
  });

  test('a GET URL for key A cannot read key B (path edited)', async () => {
    const url = await getUrl(A);
    assert.equal((await rawRequest({ port, method: 'GET', path: target(url) })).body.toString(), 'secret A');
    assertError(await rawRequest({ port, method: 'GET', path: target(url).replace('/keys/a?', '/keys/b?') }), 403, 'forbidden', /signature/);
    assertError(await rawRequest({ port, method: 'GET', path: target(url).replace('/keys/a?', '/keys/a/b?') }), 403, 'forbidden');
    assertError(await rawRequest({ port, method: 'GET', path: target(url).replace('/keys/a?', '/keys/a.bak?') }), 403, 'forbidden');
  });

  test('a PUT URL for key A cannot write key B, and B is unchanged', async () => {
    const url = await putUrl(A, 100);
    assertError(await rawRequest({ port, method: 'PUT', path: target(url).replace('/keys/a?', '/keys/b?'), body: Buffer.from('overwritten') }), 403, 'forbidden');
    assert.equal(Buffer.from(await store.get(B)).toString(), 'secret B');
    assertError(await rawRequest({ port, method: 'PUT', path: target(url).replace('/keys/a?', '/keys/c?'), body: Buffer.from('new') }), 403, 'forbidden');
    assert.equal(await store.head('keys/c'), null);
  });

  test('a GET URL cannot PUT and a PUT URL cannot GET, even with op edited', async () => {
    const get = await getUrl(A);
    const put = await putUrl(A, 100);
    assertError(await rawRequest({ port, method: 'PUT', path: target(get), body: Buffer.from('x') }), 403, 'forbidden', /allows get/);
    assertError(await rawRequest({ port, method: 'GET', path: target(put) }), 403, 'forbidden', /allows put/);
    assertError(await rawRequest({ port, method: 'GET', path: target(put).replace('op=put', 'op=get').replace(/&max=\d+/, '') }), 403, 'forbidden', /signature/);
    assertError(await rawRequest({ port, method: 'PUT', path: target(get).replace('op=get', 'op=put') + '&max=100', body: Buffer.from('x') }), 403, 'forbidden', /signature/);
    assert.equal(Buffer.from(await store.get(A)).toString(), 'secret A');
  });

  test('an expired URL is refused, one still valid is not', async () => {
    const get = await store.presign('get', A, { expiresInS: 30 });
    const put = await store.presign('put', A, { expiresInS: 30, maxBytes: 100 });
    try {
      clock = T0 + 29_999;
      assert.equal((await rawRequest({ port, method: 'GET', path: target(get) })).status, 200);
      clock = T0 + 30_000;
      assertError(await rawRequest({ port, method: 'GET', path: target(get) }), 403, 'forbidden', /expired/);
      assertError(await rawRequest({ port, method: 'PUT', path: target(put), body: Buffer.from('late') }), 403, 'forbidden', /expired/);
      await assert.rejects(uploadToUrl(put, Buffer.from('late')), /^TransferError: PUT http:\/\/127\.0\.0\.1:\d+\/v1\/blobs\/keys\/a\?… failed: 403 Forbidden: this URL has expired \(forbidden\)$/);
      await assert.rejects(downloadFromUrl(get, { maxBytes: 100 }), /403 Forbidden: this URL has expired/);
      // Extending the expiry in the URL breaks the signature.
      assertError(await rawRequest({ port, method: 'GET', path: target(get).replace(/exp=\d+/, `exp=${T0 + 99_000}`) }), 403, 'forbidden', /signature/);
    } finally {
      clock = T0;
    }
    assert.equal(Buffer.from(await store.get(A)).toString(), 'secret A');
  });

  test('a tampered signature or size limit is refused', async () => {
    const put = target(await putUrl(A, 5));
    const sig = /sig=([0-9a-f]+)/.exec(put)![1];
    const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
    assertError(await rawRequest({ port, method: 'PUT', path: put.replace(sig, flipped), body: Buffer.from('x') }), 403, 'forbidden', /signature/);
    assertError(await rawRequest({ port, method: 'PUT', path: put.replace('max=5', 'max=500'), body: Buffer.from('more than five') }), 403, 'forbidden', /signature/);
    assertError(await rawRequest({ port, method: 'PUT', path: put.replace('max=5', 'max=05'), body: Buffer.from('x') }), 403, 'forbidden', /signature/);
    const get = target(await getUrl(A));
    assertError(await rawRequest({ port, method: 'GET', path: get.replace(/sig=[0-9a-f]+/, 'sig=' + '0'.repeat(64)) }), 403, 'forbidden', /signature/);
    assert.equal(Buffer.from(await store.get(A)).toString(), 'secret A');
  });

  test('missing, garbled, repeated or unknown parameters are 400', async () => {
    const get = target(await getUrl(A));
    const cases = [
      get.replace(/&sig=[0-9a-f]+/, ''),
      get.replace(/sig=([0-9a-f]+)/, 'sig=$1aa'),
      get.replace(/sig=([0-9a-f]+)/, (_m, s: string) => `sig=${s.toUpperCase()}`),
      get.replace(/exp=\d+/, 'exp=soon'),
      get.replace(/exp=\d+&/, ''),
      get.replace('op=get', 'op=delete'),
      get.replace('op=get&', ''),
      get + '&max=100',
      get + '&op=get',
      get + '&x-debug=1',
      get.split('?')[0],
    ];
    for (const path of cases) assertError(await rawRequest({ port, method: 'GET', path }), 400, 'bad_request');
    const put = target(await putUrl(A, 100));
    assertError(await rawRequest({ port, method: 'PUT', path: put.replace(/&max=\d+/, ''), body: Buffer.from('x') }), 400, 'bad_request', /max/);
    assertError(await rawRequest({ port, method: 'PUT', path: put.replace(/max=\d+/, 'max=-1'), body: Buffer.from('x') }), 400, 'bad_request', /max/);
  });

  test('a URL signed by another store (another secret) is refused', async () => {
    const other = new LocalBlobStore({ dir, baseUrl: `http://127.0.0.1:${port}`, now: () => clock });
    assertError(await rawRequest({ port, method: 'GET', path: target(await other.presign('get', A, { expiresInS: 60 })) }), 403, 'forbidden');
  });

  test('a secret passed in keeps URLs valid in a new store over the same directory', async () => {
    const secret = randomBytes(32);
    const first = new LocalBlobStore({ dir, baseUrl: 'http://x', secret, now: () => clock });
    const second = new LocalBlobStore({ dir, baseUrl: 'http://x', secret, now: () => clock });
    const url = new URL(await first.presign('get', A, { expiresInS: 60 }));
    assert.equal(second.authorize('GET', url.pathname + url.search).ok, true);
  });
});

describe('size limits and failed uploads', () => {
  test('a PUT over the limit with a Content-Length is 413 and leaves nothing behind', async () => {
    const key = 'limits/declared';
    const res = await rawRequest({ port, method: 'PUT', path: target(await putUrl(key, 1000)), body: randomBytes(1001) });
    assertError(res, 413, 'payload_too_large', /1000 bytes/);
    assert.equal(await store.head(key), null);
    assert.deepEqual(await tempFiles(), []);
    // Exactly at the limit is fine.
    await uploadToUrl(await putUrl(key, 1000), randomBytes(1000));
    written.add(key);
    assert.deepEqual(await store.head(key), { bytes: 1000 });
  });

  test('a declared Content-Length over the limit is refused before any of the body is sent', async () => {
    const url = new URL(await putUrl('limits/huge', 1000));
    const status = await new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: url.pathname + url.search, headers: { 'content-length': String(2 ** 40) }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', () => {});
      req.on('close', () => resolve(-1));
      const timer = setTimeout(() => req.destroy(), 3000);
      req.on('close', () => clearTimeout(timer));
      req.flushHeaders();
    });
    assert.equal(status, 413);
    assert.deepEqual(await tempFiles(), []);
  });

  test('uploadToUrl reports the 413 in one line', async () => {
    const key = 'limits/client';
    await assert.rejects(uploadToUrl(await putUrl(key, 10), new Uint8Array(11)), (err: Error) => {
      assert.match(err.message, /failed: 413 Payload Too Large: the body exceeds the limit of 10 bytes \(payload_too_large\)$/);
      assert.doesNotMatch(err.message, /sig=|\n/);
      return true;
    });
    assert.equal(await store.head(key), null);
  });

  test('a chunked PUT that grows past the limit is cut off with 413 and leaves nothing behind', async () => {
    const key = 'limits/chunked';
    const url = new URL(await putUrl(key, 100_000));
    const status = await new Promise<number>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: url.pathname + url.search, headers: { 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', () => {}); // the server closes the connection after answering
      req.on('close', () => resolve(-1));
      const timer = setTimeout(() => req.destroy(), 3000);
      req.on('close', () => clearTimeout(timer));
      // More than the limit, without ending the request: the server must answer on its own.
      req.write(randomBytes(60_000));
      req.write(randomBytes(60_000));
    });
    assert.equal(status, 413);
    await until('the temporary file to go', async () => (await tempFiles()).length === 0);
    assert.equal(await store.head(key), null);
  });

  test('a PUT aborted mid-body (socket destroyed) leaves nothing behind', async () => {
    const key = 'limits/aborted';
    const url = new URL(await putUrl(key, 4 * 2 ** 20));
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path: url.pathname + url.search, headers: { 'content-length': String(4 * 2 ** 20), 'content-type': 'application/octet-stream' }, agent: false });
    req.on('error', () => {});
    req.write(randomBytes(256 * 1024));
    // The upload is under way once its temporary file exists.
    await until('the temporary file', async () => (await tempFiles()).length === 1);
    req.socket?.destroy();
    req.destroy();
    await until('the temporary file to go', async () => (await tempFiles()).length === 0);
    assert.equal(await store.head(key), null);
    // The server carries on.
    await uploadToUrl(await putUrl(key), Buffer.from('second try'));
    written.add(key);
    assert.equal(Buffer.from(await store.get(key)).toString(), 'second try');
  });

  test('a key that clashes with a prefix of other keys is 409', async () => {
    await store.put('clash/x/y', Buffer.from('y'));
    written.add('clash/x/y');
    assertError(await rawRequest({ port, method: 'PUT', path: target(await putUrl('clash/x')), body: Buffer.from('x') }), 409, 'conflict');
    assertError(await rawRequest({ port, method: 'PUT', path: target(await putUrl('clash/x/y/z')), body: Buffer.from('z') }), 409, 'conflict');
    assert.deepEqual(await tempFiles(), []);
  });
});

describe('uploads in parts', () => {
  /** What the orchestrator hands a miner for a blob of at most maxBytes. */
  async function plan(key: string, maxBytes: number): Promise<Upload> {
    const p = await parted.startMultipart(key, { expiresInS: 60, maxBytes });
    return { key, url: '', max_bytes: maxBytes, multipart: { upload_id: p.uploadId, part_bytes: p.partBytes, part_urls: p.urls } };
  }
  const multipartDirs = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n.startsWith('~multipart-'));

  test('parts go up in parallel and are joined in order into the blob; nothing temporary is left', async () => {
    const key = 'mp/joined.safetensors';
    const upload = await plan(key, 3000);
    assert.equal(upload.multipart!.part_urls.length, 3);
    const data = new Uint8Array(randomBytes(2500));
    const sent = await uploadBlob(upload, data, { concurrency: 3 });
    assert.equal(sent.bytes, 2500);
    assert.deepEqual(sent.multipart!.parts.map((p) => p.number), [1, 2, 3]);
    assert.equal(await store.head(key), null, 'nothing under the key before the parts are joined');
    await parted.completeMultipart(key, sent.multipart!.upload_id, sent.multipart!.parts);
    written.add(key);
    assert.deepEqual(await store.get(key), data);
    assert.deepEqual(await multipartDirs(), []);
    assert.deepEqual(await tempFiles(), []);
    // Joined once: the same completion again finds no upload.
    await assert.rejects(parted.completeMultipart(key, sent.multipart!.upload_id, sent.multipart!.parts), MultipartError);
  });

  test('a blob smaller than its limit uses only the parts it needs', async () => {
    const key = 'mp/short';
    const upload = await plan(key, 5000);
    assert.equal(upload.multipart!.part_urls.length, 5);
    const data = new Uint8Array(randomBytes(1500));
    const sent = await uploadBlob(upload, data);
    assert.equal(sent.multipart!.parts.length, 2);
    await parted.completeMultipart(key, sent.multipart!.upload_id, sent.multipart!.parts);
    written.add(key);
    assert.deepEqual(await store.get(key), data);
  });

  test('a completion with a wrong ETag, a missing part, a gap or a short middle part stores nothing; a right one then works', async () => {
    const key = 'mp/checked';
    const upload = await plan(key, 3000);
    const data = new Uint8Array(randomBytes(2100));
    const sent = await uploadBlob(upload, data);
    const id = sent.multipart!.upload_id;
    const parts = sent.multipart!.parts;
    const wrongTag = parts.map((p, i) => (i === 1 ? { ...p, etag: '"' + '0'.repeat(32) + '"' } : p));
    await assert.rejects(parted.completeMultipart(key, id, wrongTag), /part 2's ETag is not that of the part stored/);
    await assert.rejects(parted.completeMultipart(key, id, [parts[0], parts[2]]), /numbered 1\.\.n/);
    await assert.rejects(parted.completeMultipart(key, id, [...parts, { number: 4, etag: parts[0].etag }]), /part 4 was never uploaded/);
    await assert.rejects(parted.completeMultipart('mp/other', id, parts), /no such upload/);
    assert.equal(await store.head(key), null);
    assert.equal(await store.head('mp/other'), null);
    // Part 1 sent again, shorter: only the last part may be short.
    const { etag } = await uploadToUrl(upload.multipart!.part_urls[0], data.subarray(0, 500));
    await assert.rejects(parted.completeMultipart(key, id, [{ number: 1, etag: etag! }, parts[1], parts[2]]), /part 1 holds 500 bytes; every part but the last must hold 1000/);
    await uploadToUrl(upload.multipart!.part_urls[0], data.subarray(0, 1000));
    await parted.completeMultipart(key, id, parts);
    written.add(key);
    assert.deepEqual(await store.get(key), data);
    assert.deepEqual(await tempFiles(), []);
  });

  test('a part URL allows exactly its part: no more than the part size, not another part, key or upload', async () => {
    const key = 'mp/guarded';
    const upload = await plan(key, 2000);
    const [first, second] = upload.multipart!.part_urls.map(target);
    assertError(await rawRequest({ port, method: 'PUT', path: first, body: new Uint8Array(1001) }), 413, 'payload_too_large');
    assertError(await rawRequest({ port, method: 'PUT', path: first.replace('part=1', 'part=2'), body: new Uint8Array(10) }), 403, 'forbidden', /signature/);
    assertError(await rawRequest({ port, method: 'PUT', path: first.replace('/mp/guarded?', '/mp/other?'), body: new Uint8Array(10) }), 403, 'forbidden', /signature/);
    const other = await plan('mp/guarded', 2000);
    const otherId = other.multipart!.upload_id;
    assertError(await rawRequest({ port, method: 'PUT', path: first.replace(/upload=[0-9a-f]+/, `upload=${otherId}`), body: new Uint8Array(10) }), 403, 'forbidden', /signature/);
    assertError(await rawRequest({ port, method: 'GET', path: second }), 403, 'forbidden', /allows part/);
    assertError(await rawRequest({ port, method: 'PUT', path: first.replace(/&part=1/, ''), body: new Uint8Array(10) }), 400, 'bad_request', /'part'/);
    assertError(await rawRequest({ port, method: 'PUT', path: first.replace('part=1', 'part=0'), body: new Uint8Array(10) }), 400, 'bad_request', /'part'/);
    // Aborted: its parts are gone, and its URLs store nothing more.
    await uploadToUrl(upload.multipart!.part_urls[0], new Uint8Array(1000));
    await parted.abortMultipart(key, upload.multipart!.upload_id);
    await parted.abortMultipart('mp/guarded', otherId);
    assertError(await rawRequest({ port, method: 'PUT', path: second, body: new Uint8Array(10) }), 404, 'not_found', /no such upload/);
    await assert.rejects(parted.completeMultipart(key, upload.multipart!.upload_id, [{ number: 1, etag: '"x"' }]), /no such upload/);
    assert.deepEqual(await multipartDirs(), []);
    assert.equal(await store.head(key), null);
  });

  test('unfinished uploads are swept an hour after their URLs expire, when a store opens the directory', async () => {
    const own = join(root, 'sweep');
    const early = new LocalBlobStore({ dir: own, secret, now: () => T0, partBytes: 10, baseUrl: 'http://127.0.0.1:1' });
    const kept = await early.startMultipart('a', { expiresInS: 7200, maxBytes: 20 });
    const stale = await early.startMultipart('b', { expiresInS: 60, maxBytes: 20 });
    const later = new LocalBlobStore({ dir: own, secret, now: () => T0 + 60_000 + 3600_001, partBytes: 10 });
    await later.init();
    assert.deepEqual((await readdir(own)).sort(), [`~multipart-${kept.uploadId}`, '~store-id']);
    assert.notEqual(stale.uploadId, kept.uploadId);
    assert.equal(await later.id(), await early.id(), 'the directory keeps its id');
    await rm(own, { recursive: true });
  });

  test('planParts keeps to 10,000 parts', async () => {
    const { planParts } = await import('../../../orchestrator/storage/blob-store.ts');
    assert.deepEqual(planParts(2500, 1000), { partBytes: 1000, parts: 3 });
    assert.deepEqual(planParts(0, 1000), { partBytes: 1000, parts: 1 });
    assert.deepEqual(planParts(100_000_001, 1000), { partBytes: 10_001, parts: 9_999 + 1 });
  });
});

describe('keys', () => {
  test('path traversal, encoded or not, absolute paths and backslashes are refused', async () => {
    const query = new URL(await getUrl('keys/a')).search;
    const putQuery = new URL(await putUrl('keys/a')).search;
    const paths = [
      '/v1/blobs/../secret',
      '/v1/blobs/keys/../keys/a',
      '/v1/blobs/./keys/a',
      '/v1/blobs/%2e%2e/secret',
      '/v1/blobs/keys/%2E%2E/%2e%2e/etc/passwd',
      '/v1/blobs/..%2f..%2fsecret',
      '/v1/blobs/keys%2fa',
      '/v1/blobs//etc/passwd',
      '/v1/blobs/keys\\..\\..\\secret',
      '/v1/blobs/keys/a/',
      '/v1/blobs/',
    ];
    for (const path of paths) {
      assertError(await rawRequest({ port, method: 'GET', path: path + query }), 400, 'bad_request', /key/);
      assertError(await rawRequest({ port, method: 'PUT', path: path + putQuery, body: Buffer.from('evil') }), 400, 'bad_request', /key/);
    }
    // Nothing was written outside the store's directory, nor inside it.
    assert.deepEqual(await readdir(root), ['blobs']);
    assert.deepEqual(await tempFiles(), []);
  });

  test('presign and the store methods refuse bad keys', async () => {
    for (const key of ['../x', 'a/../b', '/etc/passwd', 'a\\b', 'a//b', '', '.', 'a/./b', 'a b', 'é', 'a/', 'x'.repeat(513)]) {
      await assert.rejects(store.presign('get', key, { expiresInS: 60 }), /invalid blob key/, key);
      await assert.rejects(store.put(key, new Uint8Array(1)), /invalid blob key/, key);
      await assert.rejects(store.head(key), /invalid blob key/, key);
    }
  });

  test('a long key (300 characters) works', async () => {
    const key = `long/${'k'.repeat(200)}/${'v'.repeat(94)}`;
    await uploadToUrl(await putUrl(key), Buffer.from('long'));
    written.add(key);
    assert.equal(Buffer.from(await downloadFromUrl(await getUrl(key), { maxBytes: 10 })).toString(), 'long');
  });

  test('the listing holds exactly the keys stored, and no temporary files', async () => {
    assert.deepEqual(await store.list(), [...written].sort());
    assert.deepEqual(await store.list('keys/'), ['keys/a', 'keys/b']);
    assert.deepEqual(await filesIn(), ['~store-id', ...written].sort());
  });

  test('openBlobStore("local:DIR") opens a LocalBlobStore on that directory', async () => {
    const opened = await openBlobStore(`local:${dir}`, { baseUrl: 'http://127.0.0.1:1' });
    assert.ok(opened instanceof LocalBlobStore);
    assert.equal(opened.dir, dir);
    assert.match(await opened.presign('put', 'a', { expiresInS: 1, maxBytes: 3 }), /^http:\/\/127\.0\.0\.1:1\/v1\/blobs\/a\?op=put&exp=\d+&max=3&sig=[0-9a-f]{64}$/);
    assert.deepEqual(await opened.list(), [...written].sort());
  });
});
