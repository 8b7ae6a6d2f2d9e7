// The S3 store against a real S3 server (s3rver) on 127.0.0.1, and openBlobStore's parsing.
// s3rver does not verify SigV4 signatures (only the access key and the expiry), so what a URL
// allows is tested on the local store; here the URLs must work and carry the right parameters.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { BlobNotFoundError } from '../../../orchestrator/storage/blob-store.ts';
import { downloadFromUrl, uploadBlob, uploadToUrl } from '../../../orchestrator-client/transfer.ts';
import { openBlobStore } from '../../../orchestrator/storage/open.ts';
import { S3_MIN_PART_BYTES, S3BlobStore } from '../../../orchestrator/storage/s3.ts';
import { startS3rver, type TestS3 } from '../../helpers/s3rver.ts';

let s3: TestS3;
let store: S3BlobStore;
let prefixed: S3BlobStore;
/** With S3's smallest parts, so that a test blob needs several. */
let parted: S3BlobStore;

before(async () => {
  s3 = await startS3rver();
  const common = { bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials };
  store = new S3BlobStore(common);
  prefixed = new S3BlobStore({ ...common, prefix: '/runs/r1/' });
  parted = new S3BlobStore({ ...common, prefix: 'runs/r2', partBytes: S3_MIN_PART_BYTES });
});

after(async () => {
  store?.close();
  prefixed?.close();
  parted?.close();
  await s3?.close();
});

describe('S3BlobStore on s3rver', () => {
  test('put, head, get, delete', async () => {
    const data = new Uint8Array(randomBytes(1000));
    await store.put('direct/a.safetensors', data);
    assert.deepEqual(await store.head('direct/a.safetensors'), { bytes: 1000 });
    assert.deepEqual(await store.get('direct/a.safetensors'), data);
    await store.put('direct/empty', new Uint8Array(0));
    assert.deepEqual(await store.head('direct/empty'), { bytes: 0 });
    assert.deepEqual(await store.get('direct/empty'), new Uint8Array(0));
    await store.delete('direct/a.safetensors');
    assert.equal(await store.head('direct/a.safetensors'), null);
    await store.delete('direct/a.safetensors'); // deleting nothing is fine
  });

  test('head of a missing key is null, get of one is BlobNotFoundError', async () => {
    assert.equal(await store.head('missing/key'), null);
    await assert.rejects(store.get('missing/key'), BlobNotFoundError);
  });

  test('a prefix is prepended to keys', async () => {
    await prefixed.put('k', new Uint8Array([7]));
    assert.equal(prefixed.objectKey('k'), 'runs/r1/k');
    assert.deepEqual(await store.head('runs/r1/k'), { bytes: 1 });
    assert.deepEqual(await prefixed.get('k'), new Uint8Array([7]));
  });

  test('invalid keys are refused before any request', async () => {
    for (const key of ['../x', '/abs', 'a//b', 'a\\b', '']) {
      await assert.rejects(store.presign('get', key, { expiresInS: 60 }), /invalid blob key/);
      await assert.rejects(store.put(key, new Uint8Array(1)), /invalid blob key/);
    }
  });

  for (const [name, size] of [
    ['one byte', 1],
    ['empty', 0],
    ['3 MiB', 3 * 2 ** 20 + 5],
  ] as const) {
    test(`${name}: presigned PUT then presigned GET through fetch`, async () => {
      const key = `presigned/${name.replace(/ /g, '-')}`;
      const data = new Uint8Array(randomBytes(size));
      await uploadToUrl(await prefixed.presign('put', key, { expiresInS: 60, maxBytes: 4 * 2 ** 20 }), data);
      assert.deepEqual(await prefixed.head(key), { bytes: size });
      const url = await prefixed.presign('get', key, { expiresInS: 60 });
      assert.deepEqual(await downloadFromUrl(url, { maxBytes: size }), data);
      assert.deepEqual(await downloadFromUrl(url, { maxBytes: size, partBytes: 2 ** 20, concurrency: 2 }), data);
      if (size > 0) await assert.rejects(downloadFromUrl(url, { maxBytes: size - 1 }), /more than the \d+ allowed/);
    });
  }

  test('presigned URLs carry no checksum parameters; exactBytes signs the Content-Length', async () => {
    const plain = new URL(await store.presign('put', 'sized/x', { expiresInS: 60, maxBytes: 100 }));
    assert.equal(plain.searchParams.get('X-Amz-SignedHeaders'), 'host');
    const exact = new URL(await store.presign('put', 'sized/x', { expiresInS: 60, exactBytes: 5 }));
    assert.equal(exact.searchParams.get('X-Amz-SignedHeaders'), 'content-length;host');
    for (const url of [plain, exact]) {
      for (const name of url.searchParams.keys()) assert.doesNotMatch(name.toLowerCase(), /checksum/, url.toString());
      assert.equal(url.pathname, `/${s3.bucket}/sized/x`);
    }
    await uploadToUrl(exact.toString(), Buffer.from('12345'));
    assert.equal(Buffer.from(await store.get('sized/x')).toString(), '12345');
    // s3rver does not check signatures, so it takes another size too; S3, R2 and MinIO answer
    // 403 SignatureDoesNotMatch.
    await uploadToUrl(exact.toString(), Buffer.from('123'));
    assert.deepEqual(await store.head('sized/x'), { bytes: 3 });
    await assert.rejects(store.presign('put', 'sized/x', { expiresInS: 60, exactBytes: 10, maxBytes: 5 }), /exceeds maxBytes/);
  });

  test('an upload in parts: part URLs sign all but the last size, parts go up in parallel, S3 joins them', async () => {
    const key = 'parts/big.safetensors';
    const maxBytes = 2 * S3_MIN_PART_BYTES + 4096;
    const plan = await parted.startMultipart(key, { expiresInS: 60, maxBytes });
    assert.equal(plan.partBytes, S3_MIN_PART_BYTES);
    assert.equal(plan.urls.length, 3);
    const signed = plan.urls.map((u) => new URL(u).searchParams.get('X-Amz-SignedHeaders'));
    assert.deepEqual(signed, ['content-length;host', 'content-length;host', 'host']);
    const data = new Uint8Array(randomBytes(2 * S3_MIN_PART_BYTES + 100));
    const sent = await uploadBlob({ key, url: '', max_bytes: maxBytes, multipart: { upload_id: plan.uploadId, part_bytes: plan.partBytes, part_urls: plan.urls } }, data, { concurrency: 3 });
    assert.equal(await parted.head(key), null, 'nothing under the key before the parts are joined');
    await parted.completeMultipart(key, plan.uploadId, sent.multipart!.parts);
    assert.deepEqual(await parted.head(key), { bytes: data.length });
    assert.deepEqual(await parted.get(key), data);
  });

  // s3rver checks neither part ETags nor upload ids on completion (it answers 500 for an unknown
  // one) and has no AbortMultipartUpload, so those refusals are tested on the local store only.
  test('S3 part sizes below 5 MiB are refused at construction', () => {
    assert.throws(() => new S3BlobStore({ bucket: s3.bucket, region: 'us-east-1', partBytes: 2 ** 20 }), /at least 5242880/);
  });

  test("an expired URL fails with S3's message in one line", async () => {
    await store.put('expiring/x', new Uint8Array([1]));
    // Signed an hour ago, valid for a minute.
    const past = new S3BlobStore({ bucket: s3.bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: s3.credentials, now: () => Date.now() - 3600_000 });
    const url = await past.presign('get', 'expiring/x', { expiresInS: 60 });
    past.close();
    assert.deepEqual(await downloadFromUrl(await store.presign('get', 'expiring/x', { expiresInS: 60 }), { maxBytes: 10 }), new Uint8Array([1]));
    await assert.rejects(downloadFromUrl(url, { maxBytes: 10 }), (err: Error) => {
      assert.match(err.message, /^GET http:\/\/127\.0\.0\.1:\d+\/tah-test\/expiring\/x\?… failed: 403 Forbidden: Request has expired \(AccessDenied\)$/);
      return true;
    });
  });
});

describe('openBlobStore', () => {
  test('s3://BUCKET and s3://BUCKET/PREFIX, with settings from the AWS environment variables', async () => {
    const env = {
      AWS_ENDPOINT_URL: s3.endpoint,
      AWS_REGION: 'auto',
      AWS_ACCESS_KEY_ID: s3.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.credentials.secretAccessKey,
    };
    const bare = await openBlobStore(`s3://${s3.bucket}`, { env });
    assert.ok(bare instanceof S3BlobStore);
    assert.equal(bare.bucket, s3.bucket);
    assert.equal(bare.prefix, '');
    assert.equal(await bare.client.config.region(), 'auto');
    const opened = await openBlobStore(`s3://${s3.bucket}/a/b/`, { env });
    assert.ok(opened instanceof S3BlobStore);
    assert.equal(opened.prefix, 'a/b');
    try {
      // Path-style by default with an endpoint, and it really talks to the server.
      await opened.put('k', Buffer.from('via env'));
      assert.equal(Buffer.from(await store.get('a/b/k')).toString(), 'via env');
      assert.equal(new URL(await opened.presign('get', 'k', { expiresInS: 5 })).pathname, `/${s3.bucket}/a/b/k`);
    } finally {
      bare.close();
      opened.close();
    }
  });

  test('options override the environment; AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL', async () => {
    const env = { AWS_ENDPOINT_URL: 'http://wrong.invalid', AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_DEFAULT_REGION: 'eu-west-1' };
    const opened = await openBlobStore(`s3://${s3.bucket}`, { env, credentials: s3.credentials });
    assert.ok(opened instanceof S3BlobStore);
    try {
      assert.equal(await opened.client.config.region(), 'eu-west-1');
      assert.ok((await opened.presign('get', 'k', { expiresInS: 5 })).startsWith(`${s3.endpoint}/${s3.bucket}/k?`));
      await opened.put('over', Buffer.from('x'));
    } finally {
      opened.close();
    }
    const overridden = await openBlobStore(`s3://${s3.bucket}`, { env, endpoint: 'https://s3.example.com', region: 'us-west-2', forcePathStyle: false, credentials: s3.credentials });
    assert.ok(overridden instanceof S3BlobStore);
    assert.equal(await overridden.client.config.region(), 'us-west-2');
    assert.ok((await overridden.presign('get', 'k', { expiresInS: 5 })).startsWith(`https://${s3.bucket}.s3.example.com/k?`));
    overridden.close();
  });

  test('anything else is refused with a clear error', async () => {
    const env = {};
    const cases: [string, RegExp, Record<string, string>?][] = [
      ['', /unknown blob store '': expected local:DIR or s3:\/\/BUCKET\[\/PREFIX\]/],
      ['/tmp/blobs', /unknown blob store '\/tmp\/blobs'/],
      ['gs://bucket', /unknown blob store 'gs:\/\/bucket'/],
      ['S3://bucket', /unknown blob store/],
      ['local:', /no directory given/],
      ['s3://', /invalid bucket name ''/],
      ['s3://Bad_Bucket', /invalid bucket name 'Bad_Bucket'/],
      ['s3://ab', /invalid bucket name/],
      ['s3://bucket/../x', /invalid prefix '\.\.\/x'/],
      ['s3://bucket/a//b', /invalid prefix/],
      ['s3://bucket', /endpoint 'ftp:\/\/x' is not an http\(s\) URL/, { AWS_ENDPOINT_URL: 'ftp://x' }],
      ['s3://bucket', /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/, { AWS_ACCESS_KEY_ID: 'only-one' }],
    ];
    for (const [spec, message, extra] of cases) await assert.rejects(openBlobStore(spec, { env: { ...env, ...extra } }), message, spec);
  });
});
