// Redaction, and the log file as electron-log (its Node flavour) really writes it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import log from 'electron-log/node';
import { MAX_LOG_BYTES, REDACTED, configureLog, findSecret, logFiles, redact, redactValue, workerLog } from '../../../electron/core/logs.ts';

const root = await mkdtemp(join(tmpdir(), 'tah-logs-'));
after(() => rm(root, { recursive: true, force: true }));

const SEED = `0x${'9f3a'.repeat(16)}`; // 64 hex digits
const PRIVATE_KEY = `0x${'c0ffee42'.repeat(16)}`; // 128
const MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow';
const MNEMONIC_24 = 'abandon '.repeat(23) + 'art';

test('redact: long hex, with or without 0x', () => {
  assert.equal(redact(`seed ${SEED} done`), `seed ${REDACTED} done`);
  assert.equal(redact(`key=${PRIVATE_KEY.slice(2)}`), `key=${REDACTED}`);
  const short = `0x${'ab'.repeat(20)}`; // an address-sized value stays
  assert.equal(redact(`tx ${short}`), `tx ${short}`);
});

test('redact: passwords in URLs', () => {
  assert.equal(redact('GET https://user:pass@host.example/x failed'), 'GET https://***@host.example/x failed');
  assert.equal(redact('http://token@10.0.0.1:8080'), 'http://***@10.0.0.1:8080');
  assert.equal(redact('{"url":"https://a:b@h","mail":"me@example.org"}'), '{"url":"https://***@h","mail":"me@example.org"}');
  assert.equal(redact('https://host.example/path@v2'), 'https://host.example/path@v2', 'an @ after the host is not userinfo');
});

test('redact: recovery phrases (12 and 24 words), with or without a label', () => {
  assert.equal(redact(`imported ${MNEMONIC}.`), `imported ${REDACTED}.`);
  assert.equal(redact(`words: ${MNEMONIC_24}`), `words: ${REDACTED}`);
  assert.equal(redact(`mnemonic: ${MNEMONIC.replace('winner', 'winnr')}`), `mnemonic: ${REDACTED}`, 'a misspelt phrase after "mnemonic" goes too');
  const prose = 'the worker could not reach the orchestrator because the network was down for a while';
  assert.equal(redact(prose), prose, 'ordinary sentences stay');
});

test('redact: fields named like secrets, as JSON, JS or key=value', () => {
  assert.equal(redact('{"secretPhrase":"a b c","secretSeed":"0x12","ss58Address":"5Abc"}'), '{"secretPhrase":"[redacted]","secretSeed":"[redacted]","ss58Address":"5Abc"}');
  assert.equal(redact("{ privateKey: 'xyz', mnemonic: 'q r s' }"), "{ privateKey: '[redacted]', mnemonic: '[redacted]' }");
  assert.equal(redact('seedHex=abc123 password = hunter2'), `seedHex=${REDACTED} password = ${REDACTED}`);
  assert.equal(redact('{"secretPhrase": "say \\"hi\\" there", "n": 1}'), '{"secretPhrase": "[redacted]", "n": 1}', 'escaped quotes stay inside the value');
});

test('redactValue: walks objects, replaces secret fields of any type, drops bytes, survives cycles', () => {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const shared = { a: 1 };
  const out = redactValue({
    wallet: { secretSeed: new Uint8Array(32), privateKey: PRIVATE_KEY, address: '5Grw', backedUp: true, mnemonic: null },
    url: 'https://u:p@h',
    list: [SEED, 3],
    seed: Buffer.alloc(32, 7),
    err: new Error(`bad seed ${SEED}`),
    cyclic,
    twice: [shared, shared],
  }) as Record<string, unknown>;
  assert.deepEqual(out.wallet, { secretSeed: REDACTED, privateKey: REDACTED, address: '5Grw', backedUp: true, mnemonic: null });
  assert.equal(out.url, 'https://***@h');
  assert.deepEqual(out.list, [REDACTED, 3]);
  assert.equal(out.seed, '[32 bytes]');
  assert.ok(out.err instanceof Error);
  assert.equal(out.err.message, `bad seed ${REDACTED}`);
  assert.ok(!out.err.stack?.includes(SEED));
  assert.deepEqual(out.cyclic, { name: 'loop', self: '[circular]' });
  assert.deepEqual(out.twice, [{ a: 1 }, { a: 1 }], 'the same object twice is not a cycle');
});

test('redactValue: keys, bigints and toJSON are redacted too, as JSON would write them', () => {
  const keyed = new Map([[SEED, 'wallet']]);
  class Key {
    toJSON(): unknown {
      return { hex: PRIVATE_KEY };
    }
  }
  const out = redactValue({ keyed, plain: { [SEED.slice(2)]: 1 }, big: 2n ** 260n, small: 42n, key: new Key(), bad: { toJSON: () => { throw new Error('no'); } } });
  assert.deepEqual(out, { keyed: { [REDACTED]: 'wallet' }, plain: { [REDACTED]: 1 }, big: REDACTED, small: '42', key: { hex: REDACTED }, bad: '[unserialisable]' });
  assert.doesNotThrow(() => JSON.stringify(out));
});

test('findSecret: spots what redact removes', () => {
  assert.equal(findSecret('all fine here'), null);
  assert.ok(findSecret(SEED.slice(2)));
  assert.ok(findSecret(`x ${MNEMONIC} y`));
  assert.equal(findSecret(redact(`x ${MNEMONIC} ${SEED} https://a:b@c`)), null);
});

test('electron-log writes redacted, formatted lines to <dir>/main.log, the worker in the same file', async () => {
  const dir = join(root, 'logs', 'nested');
  const logger = log.create({ logId: `tah-test-${process.pid}` });
  const file = configureLog(logger, { dir, level: 'info', consoleLevel: false });
  assert.equal(file, join(dir, 'main.log'));
  assert.deepEqual(logFiles(dir), [join(dir, 'main.log'), join(dir, 'main.old.log')]);
  assert.equal(logger.transports.file.maxSize, MAX_LOG_BYTES);
  assert.equal(MAX_LOG_BYTES, 5 * 1024 * 1024);
  configureLog(logger, { dir, level: 'info', consoleLevel: false }); // twice: still one hook

  logger.info('wallet created', { address: '5Grw', secretPhrase: MNEMONIC, secretSeed: SEED });
  logger.warn(`orchestrator https://alice:s3cret@swarm.example.org unreachable; seed ${SEED}`);
  logger.error(new Error(`could not sign with ${PRIVATE_KEY}`));
  logger.debug('below the level: not written');
  workerLog(logger).info(`stage 2 ready; phrase ${MNEMONIC_24}`);
  logger.scope('power').info('on battery');
  // Caught by the hook only: formatted, these bytes would no longer look like a key.
  logger.info('keypair', { secretSeed: Uint8Array.from({ length: 32 }, (_, i) => 201 + i) });
  // Caught by the finished-line pass only: each half is too short to look like a key.
  logger.info('joined %s%s', SEED.slice(0, 34), SEED.slice(34));

  const text = await readFile(file, 'utf8');
  const lines = text.trim().split('\n');
  assert.match(lines[0], /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] \[info\]\s+wallet created /, 'ISO time and level');
  assert.match(text, /\[warn\]\s+orchestrator https:\/\/\*\*\*@swarm\.example\.org unreachable; seed \[redacted\]/);
  assert.match(text, /\[error\]\s+Error: could not sign with \[redacted\]/);
  assert.match(text, /\(worker\)\s*stage 2 ready; phrase \[redacted\]/, 'worker lines carry their scope');
  assert.match(text, /\(power\)\s*on battery/);
  assert.match(text, /5Grw/);
  assert.match(text, /keypair \{ secretSeed: '\[redacted\]' \}$/m, 'no byte of the seed');
  assert.match(text, /joined \[redacted\]/);
  assert.doesNotMatch(text, /below the level/);
  assert.equal(text.match(/wallet created/g)?.length, 1, 'configuring twice does not double lines');
  for (const secret of [SEED.slice(2), PRIVATE_KEY.slice(2), 'legal winner', 'abandon abandon', 's3cret']) {
    assert.ok(!text.includes(secret), `${secret} leaked into the log:\n${text}`);
  }
  assert.equal(findSecret(text), null);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
});
