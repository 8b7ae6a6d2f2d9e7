// Blobs straight through the local store's directory: what a guest writes, the store's own server
// serves, and what the server received, the guest reads; a directory that is not the orchestrator's
// store is refused at once; whatever the guest cannot do directly goes over HTTP.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { OrchestratorClient } from '../../../orchestrator-client/client.ts';
import type { Upload } from '../../../orchestrator-client/protocol.ts';
import { keypairFromSeed, ready } from '../../../orchestrator-client/signing.ts';
import { blobSha256 } from '../../../orchestrator-client/transfer.ts';
import { LocalBlobStore, localBlobUrlKey } from '../../../orchestrator/storage/local.ts';
import { registerLocalBlobRoutes } from '../../../orchestrator/storage/local-routes.ts';
import { startOrchestrator } from '../../../orchestrator/service.ts';
import { httpTransport, localStoreTransport } from '../../../worker/miner/blob-transport.ts';

let root = '';
let dir = '';
let store: LocalBlobStore;
let app: FastifyInstance;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'tah-transport-'));
  dir = join(root, 'blobs');
  store = new LocalBlobStore({ dir, partBytes: 1000 });
  app = Fastify();
  registerLocalBlobRoutes(app, store);
  await app.listen({ host: '127.0.0.1', port: 0 });
  store.setBaseUrl(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
});

after(async () => {
  await app?.close();
  await rm(root, { recursive: true, force: true });
});

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

async function upload(key: string, maxBytes: number): Promise<Upload> {
  return { key, url: await store.presign('put', key, { expiresInS: 60, maxBytes }), max_bytes: maxBytes };
}

test("a guest's upload is served over HTTP, and an upload over HTTP is read by the guest", async () => {
  const direct = await localStoreTransport(dir, await store.id());
  const a = bytes(5000, 1);
  assert.deepEqual(await direct.upload(await upload('run/a', 8000), a), { key: 'run/a', bytes: 5000, sha256: blobSha256(a) });
  assert.deepEqual(await httpTransport.download(await store.presign('get', 'run/a', { expiresInS: 60 }), 8000), a);

  const b = bytes(700, 2);
  await httpTransport.upload(await upload('run/b', 700), b);
  assert.deepEqual(await direct.download(await store.presign('get', 'run/b', { expiresInS: 60 }), 1000), b);
});

test('a directory that is not the orchestrator\'s store is refused before anything moves', async () => {
  const otherId = await new LocalBlobStore({ dir: join(root, 'other') }).id();
  await assert.rejects(localStoreTransport(join(root, 'other'), await store.id()), /--local-store .*other is another blob store than the orchestrator's/);
  await assert.rejects(localStoreTransport(dir, otherId), /another blob store/);
  await assert.rejects(localStoreTransport(dir, undefined), /keeps no local store/);
  await mkdir(join(root, 'plain'));
  await assert.rejects(localStoreTransport(join(root, 'plain'), await store.id()), /is not a blob store/);
  assert.deepEqual(await readdir(join(root, 'plain')), [], 'a guest creates nothing in a directory that is not a store');
});

test('an oversized upload and a missing blob get clear errors and leave nothing behind', async () => {
  const direct = await localStoreTransport(dir, await store.id());
  await assert.rejects(direct.upload(await upload('run/big', 100), bytes(101, 3)), /upload to run\/big: 101 bytes is more than the 100 allowed/);
  assert.equal(await store.head('run/big'), null);
  await assert.rejects(direct.download(await store.presign('get', 'run/none', { expiresInS: 60 }), 100), /run\/none: no such blob in the local store/);
  await store.put('run/c', bytes(300, 4));
  await assert.rejects(direct.download(await store.presign('get', 'run/c', { expiresInS: 60 }), 299), /run\/c: the blob is 300 bytes, more than the 299 allowed/);
  assert.deepEqual((await readdir(dir)).filter((f) => f.startsWith('~upload')), []);
});

test("a guest never sweeps the owner's uploads in flight", async () => {
  const inFlight = join(dir, '~upload-0123456789abcdef01234567.part');
  await writeFile(inFlight, 'half an upload');
  const direct = await localStoreTransport(dir, await store.id());
  await direct.upload(await upload('run/d', 10), bytes(10, 5));
  assert.ok((await readdir(dir)).includes('~upload-0123456789abcdef01234567.part'));
  await rm(inFlight);
});

test('an upload in parts, or a URL of another server, goes over HTTP', async () => {
  const direct = await localStoreTransport(dir, await store.id());
  const plan = await store.startMultipart('run/parts', { expiresInS: 60, maxBytes: 2500 });
  const data = bytes(2500, 6);
  const done = await direct.upload({ key: 'run/parts', url: plan.urls[0], max_bytes: 2500, multipart: { upload_id: plan.uploadId, part_bytes: plan.partBytes, part_urls: plan.urls } }, data);
  assert.equal(done.multipart?.parts.length, 3, 'the parts went to the server, which answered their ETags');
  await store.completeMultipart('run/parts', plan.uploadId, done.multipart!.parts);
  assert.deepEqual(await store.get('run/parts'), data);

  assert.equal(localBlobUrlKey('http://127.0.0.1:1/v1/other/run/x?op=get'), null);
  assert.equal(localBlobUrlKey('http://127.0.0.1:1/v1/blobs/run/x?op=part'), null);
  assert.equal(localBlobUrlKey('http://127.0.0.1:1/v1/blobs/../x?op=get'), null);
  assert.deepEqual(localBlobUrlKey('http://127.0.0.1:1/v1/blobs/run/x?op=get&sig=00'), { key: 'run/x', op: 'get' });
});

test("the orchestrator's /v1/health names its local store, which a guest on its machine can open", async () => {
  await ready();
  const orchDir = join(root, 'orchestrator');
  const orch = await startOrchestrator({ db: `sqlite:${join(orchDir, 'o.db')}`, storage: `local:${join(orchDir, 'blobs')}`, reapIntervalMs: 3_600_000 });
  try {
    const client = new OrchestratorClient({ baseUrl: orch.url, keypair: keypairFromSeed(new Uint8Array(32).fill(9)) });
    const health = await client.health();
    assert.match(health.local_store_id ?? '', /^[0-9a-f]{32}$/);
    assert.equal(health.local_store_id, await new LocalBlobStore({ dir: join(orchDir, 'blobs'), role: 'guest' }).id());
    await localStoreTransport(join(orchDir, 'blobs'), health.local_store_id);
  } finally {
    await orch.close();
  }
  // The id is the directory's: a restarted orchestrator tells the same one.
  const again = await startOrchestrator({ db: `sqlite:${join(orchDir, 'o.db')}`, storage: `local:${join(orchDir, 'blobs')}`, reapIntervalMs: 3_600_000 });
  try {
    const client = new OrchestratorClient({ baseUrl: again.url, keypair: keypairFromSeed(new Uint8Array(32).fill(9)) });
    assert.equal((await client.health()).local_store_id, await new LocalBlobStore({ dir: join(orchDir, 'blobs'), role: 'guest' }).id());
  } finally {
    await again.close();
  }
});
