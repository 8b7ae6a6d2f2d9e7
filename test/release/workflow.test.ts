// The release workflow (.github/workflows/release.yml), checked offline. First against GitHub's
// workflow schema, with @action-validator/core (SchemaStore's github-workflow.json compiled into
// its WebAssembly). Then for what matters to this project: a Linux and a macOS arm64 runner, the
// package.json scripts as the builds, the secrets that RELEASING.md lists and no other, no secret
// printed by a run: line, and latest-mac.yml / latest-linux.yml produced, checked and uploaded
// last. The scripts of the preflight, check, staging and read-back steps are run here with bash on
// fixture files (and a local HTTP server standing in for the update URL).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { validateWorkflow, type ValidationError } from '@action-validator/core';
import { load as loadYaml } from 'js-yaml';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKFLOW = join(ROOT, '.github/workflows/release.yml');

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Job {
  'runs-on': string;
  needs?: string | string[];
  env?: Record<string, unknown>;
  permissions?: unknown;
  steps: Step[];
}
interface Workflow {
  on: { push?: { tags?: string[] }; workflow_dispatch?: unknown };
  permissions: unknown;
  concurrency: { group: string; 'cancel-in-progress': boolean };
  env?: Record<string, unknown>;
  jobs: Record<string, Job>;
}

const source = await readFile(WORKFLOW, 'utf8');
const workflow = loadYaml(source) as Workflow;
const releasing = await readFile(join(ROOT, 'RELEASING.md'), 'utf8');
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string>; allowScripts?: Record<string, boolean> };
const scripts = pkg.scripts;

/** The validator's errors, one line each (a oneOf's failure carries each branch's errors). */
function describe(errors: ValidationError[]): string[] {
  return errors.flatMap((e) => {
    if ('states' in e && e.states?.length) return describe(e.states.flatMap((s) => s.errors));
    const where = 'path' in e ? e.path : 'location' in e && e.location ? `line ${e.location.line}` : '';
    return [`${where} ${e.title}${e.detail ? `: ${e.detail}` : ''}`];
  });
}

function job(name: string): Job {
  const j = workflow.jobs[name];
  assert.ok(j, `a job "${name}"`);
  return j;
}

function step(jobName: string, id: string): Step {
  const s = job(jobName).steps.find((x) => x.id === id);
  assert.ok(s, `job ${jobName} has a step "${id}"`);
  return s;
}

/** The lines of a step's run: script, trimmed, without blank lines and comments. */
function runLines(s: Step): string[] {
  return (s.run ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Names in the first column of the markdown table under "## <heading>" (each as `NAME`). */
function tableNames(markdown: string, heading: string): Set<string> {
  const section = markdown.split(/^## /m).find((s) => s.startsWith(`${heading}\n`));
  assert.ok(section, `RELEASING.md has a "## ${heading}" section`);
  const names = new Set<string>();
  for (const line of section.split('\n')) {
    const first = line.startsWith('|') ? line.split(/(?<!\\)\|/)[1]?.trim() : undefined;
    const m = first?.match(/^`([A-Z][A-Z0-9_]*)`$/);
    if (m) names.add(m[1]);
  }
  return names;
}

/** Every NAME used as `<context>.NAME` inside the workflow's expressions. */
function contextNames(text: string, context: 'secrets' | 'vars'): Set<string> {
  const names = new Set<string>();
  for (const expr of text.matchAll(/\$\{\{([^}]*)\}\}/g)) {
    for (const m of expr[1].matchAll(new RegExp(`\\b${context}\\.([A-Za-z_][A-Za-z0-9_]*)`, 'g'))) names.add(m[1]);
  }
  names.delete('GITHUB_TOKEN');
  return names;
}

const sorted = (s: Set<string>) => [...s].sort();

/**
 * The ways a step's run: could put a secret into the log: an expression in the script itself, or
 * a line that prints a variable holding a secret other than into a file of its own.
 */
function secretLeaks(s: Step, secretVars: Set<string>): string[] {
  const leaks: string[] = [];
  const run = s.run ?? '';
  if (run.includes('${{')) leaks.push(`${s.id ?? s.name}: an expression in run: (pass it through env:)`);
  if (/^\s*set\s+-[a-z]*x/m.test(run)) leaks.push(`${s.id ?? s.name}: set -x traces every command`);
  for (const line of runLines(s)) {
    const used = [...secretVars].filter((v) => new RegExp(`\\$\\{?${v}\\b`).test(line));
    if (used.length === 0 || !/\b(echo|printf|cat|tee|env|printenv)\b/.test(line)) continue;
    const redirect = line.match(/>>?\s*("?)([^\s"]+)\1/);
    if (!redirect || /GITHUB_(ENV|OUTPUT|STEP_SUMMARY)/.test(redirect[2])) leaks.push(`${s.id ?? s.name}: "${line}" prints ${used.join(', ')}`);
  }
  return leaks;
}

/** Runs a step's script as GitHub does (bash --noprofile --norc -eo pipefail <file>); RUNNER_TEMP is cwd. */
async function runStep(s: Step, cwd: string, env: Record<string, string>): Promise<{ status: number | null; out: string }> {
  const file = join(cwd, `.step-${s.id}.sh`);
  await writeFile(file, s.run ?? '');
  const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', file], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? cwd, RUNNER_TEMP: cwd, ...env },
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, out };
}

test('release.yml passes GitHub workflow schema (@action-validator/core)', () => {
  const result = validateWorkflow(source);
  assert.equal(result.actionType, 'workflow');
  assert.deepEqual(describe(result.errors), []);
});

test('the validator is live: broken copies of release.yml are rejected', () => {
  const broken = {
    'a misspelt key': source.replace('runs-on:', 'run-on:'),
    'a permission level that does not exist': source.replace('contents: read', 'contents: reed'),
    'an input type that does not exist': source.replace('type: boolean', 'type: bool'),
    'a step with an unknown key': source.replace('      - run: ', '      - runs: '),
    'no YAML': `${source}\n  [unclosed`,
  };
  for (const [what, text] of Object.entries(broken)) {
    assert.notEqual(text, source, what);
    assert.ok(validateWorkflow(text).errors.length > 0, `${what} is reported`);
  }
});

test('it runs on a pushed tag v* and by hand, reads the repository only, one release per ref at a time', () => {
  assert.deepEqual(workflow.on.push?.tags, ['v*']);
  assert.ok('workflow_dispatch' in workflow.on);
  assert.deepEqual(workflow.permissions, { contents: 'read' });
  for (const [name, j] of Object.entries(workflow.jobs)) assert.equal(j.permissions, undefined, `job ${name} asks for no more permissions`);
  assert.match(workflow.concurrency.group, /\$\{\{ github\.ref \}\}/);
  assert.equal(workflow.concurrency['cancel-in-progress'], false, 'a release is never cancelled halfway through its upload');
  // Publishing only from a tag v*; a manual run on a branch is a dry run.
  assert.match(String(workflow.env?.PUBLISH), /startsWith\(github\.ref, 'refs\/tags\/v'\) &&/);
});

test('actions are pinned to a major version', () => {
  const uses = Object.values(workflow.jobs).flatMap((j) => j.steps.flatMap((s) => (s.uses ? [s.uses] : [])));
  for (const u of uses) assert.match(u, /^[\w.-]+\/[\w.-]+@(v\d+|[0-9a-f]{40})$/, u);
  for (const a of ['actions/checkout', 'actions/setup-node', 'actions/upload-artifact', 'actions/download-artifact']) {
    assert.ok(uses.some((u) => u.startsWith(`${a}@`)), `${a} is used`);
  }
});

test('a Linux and a macOS arm64 job: checkout, Node 20 with the npm cache, npm ci, npm run check, then the package.json script', () => {
  assert.match(job('linux')['runs-on'], /^ubuntu-/);
  // macos-14 and later are Apple Silicon (macos-13 and the -large runners are Intel).
  assert.match(job('mac')['runs-on'], /^macos-(1[4-9]|latest)(-xlarge)?$/);
  for (const [name, script] of [['linux', 'dist:linux'], ['mac', 'dist:mac']] as const) {
    const steps = job(name).steps;
    const at = (pred: (s: Step) => boolean, what: string) => {
      const i = steps.findIndex(pred);
      assert.ok(i >= 0, `job ${name}: ${what}`);
      return i;
    };
    const order = [
      at((s) => s.uses?.startsWith('actions/checkout@') === true, 'checkout'),
      at((s) => s.uses?.startsWith('actions/setup-node@') === true, 'setup-node'),
      at((s) => runLines(s).some((l) => /^npm ci\b/.test(l)), 'npm ci'),
      at((s) => runLines(s).includes('npm run check'), 'npm run check'),
      at((s) => s.id === 'build', 'the build'),
      at((s) => s.uses?.startsWith('actions/upload-artifact@') === true, 'the artifact'),
    ];
    assert.deepEqual([...order].sort((a, b) => a - b), order, `job ${name}: steps in this order`);
    const node = steps[order[1]].with ?? {};
    assert.equal(String(node['node-version']), '20');
    assert.equal(node.cache, 'npm');
    assert.ok(runLines(step(name, 'build')).includes(`npm run ${script}`), `job ${name} builds with npm run ${script}`);
  }
  // electron-builder runs nowhere but in the package.json scripts, and to publish what they built.
  for (const [name, j] of Object.entries(workflow.jobs)) {
    for (const l of j.steps.flatMap(runLines).filter((x) => x.includes('electron-builder'))) {
      assert.equal(name, 'release', `job ${name}: ${l}`);
      assert.match(l, /npx electron-builder publish /);
    }
  }
  const linux = scripts['dist:linux'];
  const mac = scripts['dist:mac'];
  assert.ok(linux, 'package.json has a dist:linux script');
  assert.ok(mac, 'package.json has a dist:mac script');
  for (const s of [linux, mac]) {
    assert.match(s, /npm run build:app && electron-builder --config electron-builder\.config\.ts /);
    assert.match(s, /--publish never\b/, 'the scripts never publish: the release job does, once both platforms are built');
  }
  assert.match(linux, /--linux AppImage deb\b/);
  assert.match(mac, /--mac dmg zip\b/);
  assert.match(mac, /--arm64\b/);
  // The Linux app ships ONNX Runtime's CPU provider only: no CUDA download during npm ci, by
  // package.json's allowScripts where npm reads it, and by the installer's own switch where it does not (npm 10).
  assert.equal(pkg.allowScripts?.['onnxruntime-node'], false, "package.json's allowScripts denies onnxruntime-node's install script");
  assert.equal(job('linux').env?.ONNXRUNTIME_NODE_INSTALL, 'skip');
  // The job that holds the AWS key runs no install scripts.
  assert.ok(job('release').steps.flatMap(runLines).includes('npm ci --ignore-scripts --no-audit --no-fund'));
});

test('the secrets the workflow uses are exactly those RELEASING.md lists, its variables too, and publishing checks them all first', async () => {
  const listed = tableNames(releasing, 'Secrets');
  const used = contextNames(source, 'secrets');
  assert.ok(used.size > 0);
  assert.deepEqual(sorted(used), sorted(listed));
  assert.deepEqual(sorted(contextNames(source, 'vars')), sorted(tableNames(releasing, 'Variables')));
  // Each secret only where it is needed: Apple's on the macOS build, AWS's and the bucket's where the files are uploaded.
  for (const [name, j] of Object.entries(workflow.jobs)) {
    if (name === 'preflight') continue;
    const text = JSON.stringify(j);
    for (const secret of used) {
      if (/^(CSC_|APPLE_)/.test(secret) && name !== 'mac') assert.ok(!text.includes(`secrets.${secret}`), `${secret} is not given to job ${name}`);
      if (/^(AWS_|TAH_UPDATE_BUCKET)/.test(secret) && name !== 'release') assert.ok(!text.includes(`secrets.${secret}`), `${secret} is not given to job ${name}`);
    }
  }
  // Signing and notarization: electron-builder's variables on the macOS build; APPLE_API_KEY is a path.
  const build = step('mac', 'build').env ?? {};
  for (const name of ['CSC_LINK', 'CSC_KEY_PASSWORD', 'APPLE_API_KEY_ID', 'APPLE_API_ISSUER']) assert.equal(build[name], `\${{ secrets.${name} }}`);
  assert.ok(runLines(step('mac', 'apple-api-key')).includes('echo "APPLE_API_KEY=$key" >> "$GITHUB_ENV"'));
  // Publishing: the AWS key, the bucket, its region and the update URL.
  const publish = step('release', 'publish').env ?? {};
  for (const v of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION', 'TAH_UPDATE_BUCKET', 'TAH_UPDATE_URL']) assert.equal(publish[v], `\${{ secrets.${v} }}`, v);
  // The preflight job checks every one of them before anything is built, and names the missing ones.
  const preflight = step('preflight', 'settings');
  assert.equal(preflight.if, "env.PUBLISH == 'true'");
  assert.deepEqual(sorted(new Set(Object.keys(preflight.env ?? {}))), sorted(used));
  for (const j of ['linux', 'mac']) assert.deepEqual([job(j).needs].flat(), ['preflight']);
  const dir = await mkdtemp(join(tmpdir(), 'tah-preflight-'));
  try {
    const all = Object.fromEntries([...used].map((n) => [n, `value of ${n}`]));
    const ok = await runStep(preflight, dir, all);
    assert.equal(ok.status, 0, ok.out);
    const { AWS_REGION: _region, CSC_LINK: _link, ...some } = all;
    const missing = await runStep(preflight, dir, some);
    assert.equal(missing.status, 1);
    assert.match(missing.out, /secrets not set \(RELEASING\.md\): CSC_LINK AWS_REGION/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('no run: line holds an expression or prints a secret', () => {
  const leaks: string[] = [];
  const workflowSecrets = Object.entries(workflow.env ?? {}).filter(([, v]) => String(v).includes('secrets.')).map(([k]) => k);
  for (const j of Object.values(workflow.jobs)) {
    const jobSecrets = Object.entries(j.env ?? {}).filter(([, v]) => String(v).includes('secrets.')).map(([k]) => k);
    for (const s of j.steps) {
      const stepSecrets = Object.entries(s.env ?? {}).filter(([, v]) => String(v).includes('secrets.')).map(([k]) => k);
      leaks.push(...secretLeaks(s, new Set([...workflowSecrets, ...jobSecrets, ...stepSecrets])));
    }
  }
  assert.deepEqual(leaks, []);
  // The check itself catches what it should.
  const vars = new Set(['CSC_LINK']);
  assert.equal(secretLeaks({ id: 'x', run: 'echo "$CSC_LINK"' }, vars).length, 1);
  assert.equal(secretLeaks({ id: 'x', run: 'echo "CSC=${CSC_LINK}" >> "$GITHUB_ENV"' }, vars).length, 1);
  assert.equal(secretLeaks({ id: 'x', run: 'cat <<<"$CSC_LINK" | tee out' }, vars).length, 1);
  assert.equal(secretLeaks({ id: 'x', run: 'echo ${{ secrets.CSC_LINK }} > f' }, vars).length, 1);
  assert.equal(secretLeaks({ id: 'x', run: 'set -x\nnpm run dist:mac' }, vars).length, 1);
  assert.equal(secretLeaks({ id: 'x', run: "printf '%s' \"$CSC_LINK\" > \"$RUNNER_TEMP/cert\"" }, vars).length, 0);
});

test('latest-mac.yml and latest-linux.yml are kept, checked, and uploaded after the installers, once both platforms are built', () => {
  for (const [name, yml, files] of [
    ['linux', 'latest-linux.yml', ['*.AppImage', '*.deb']],
    ['mac', 'latest-mac.yml', ['*.dmg', '*.zip', '*.blockmap']],
  ] as const) {
    const upload = job(name).steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    assert.ok(upload, `${name} uploads an artifact`);
    assert.equal(upload.with?.name, `release-${name}`);
    const paths = String(upload.with?.path).split('\n').map((p) => p.trim());
    for (const f of [yml, ...files]) assert.ok(paths.includes(`dist/release/${f}`), `${name} keeps dist/release/${f}`);
    assert.equal(upload.with?.['if-no-files-found'], 'error');
  }
  const release = job('release');
  assert.deepEqual([release.needs].flat().sort(), ['linux', 'mac']);
  const at = (pred: (s: Step) => boolean) => release.steps.findIndex(pred);
  const download = at((s) => s.uses?.startsWith('actions/download-artifact@') === true);
  assert.ok(download > at((s) => s.uses?.startsWith('actions/checkout@') === true), 'checkout first (it cleans the workspace)');
  assert.deepEqual(release.steps[download].with, { pattern: 'release-*', path: 'artifacts' });
  // Checked on every run, dry or not; then staged, uploaded and read back when publishing.
  const order = ['metadata', 'staging', 'publish', 'served'].map((id) => at((s) => s.id === id));
  assert.deepEqual([...order].sort((a, b) => a - b), order);
  assert.ok(download < order[0]);
  assert.equal(step('release', 'metadata').if, undefined);
  for (const id of ['staging', 'publish', 'served']) assert.equal(step('release', id).if, "env.PUBLISH == 'true'", id);
  const publish = step('release', 'publish');
  const calls = runLines(publish).filter((l) => l.startsWith('publish '));
  assert.equal(calls.length, 2);
  for (const f of ['release-mac/*.dmg', 'release-mac/*.zip', 'release-mac/*.blockmap', 'release-linux/*.AppImage', 'release-linux/*.deb']) assert.ok(calls[0].includes(`artifacts/${f}`), `the installers first: ${f}`);
  assert.ok(!calls[0].includes('.yml'));
  assert.equal(calls[1], 'publish artifacts/release-mac/latest-mac.yml artifacts/release-linux/latest-linux.yml', 'the update metadata last');
  assert.match(publish.run ?? '', /grep -q 'error publishing'/, 'a failed upload fails the step (electron-builder publish exits 0)');
});

test('on macOS, nothing is published unless the app passes Gatekeeper as notarized and its ticket is stapled', () => {
  const steps = job('mac').steps;
  const at = (pred: (s: Step) => boolean) => steps.findIndex(pred);
  const check = step('mac', 'notarized');
  assert.equal(check.if, "env.PUBLISH == 'true'");
  assert.ok(runLines(check).some((l) => l.startsWith('spctl -a -vvv -t exec ')));
  assert.match(check.run ?? '', /source=Notarized Developer ID/);
  assert.ok(runLines(check).some((l) => l.startsWith('xcrun stapler validate ')));
  assert.ok(at((s) => s.id === 'build') < at((s) => s.id === 'notarized'));
  assert.ok(at((s) => s.id === 'notarized') < at((s) => s.uses?.startsWith('actions/upload-artifact@') === true), 'before the files are handed on');
});

/** A release as the build jobs hand it on: the files, and latest-*.yml as electron-builder writes them. */
async function fixture(dir: string, version: string, unlisted?: RegExp): Promise<void> {
  const sha512 = (data: string) => createHash('sha512').update(data).digest('base64');
  const files = {
    mac: [`Train at Home-${version}-arm64-mac.zip`, `Train at Home-${version}-arm64.dmg`],
    linux: [`Train at Home-${version}-x86_64.AppImage`, `train-at-home_${version}_amd64.deb`],
  };
  for (const [platform, names] of Object.entries(files)) {
    const d = join(dir, 'artifacts', `release-${platform}`);
    await mkdir(d, { recursive: true });
    const entries = [];
    for (const n of names) {
      const data = `the bytes of ${n}`;
      await writeFile(join(d, n), data);
      if (!unlisted?.test(n)) entries.push(`  - url: ${n}\n    sha512: ${sha512(data)}\n    size: ${data.length}\n`);
      if (platform === 'mac') await writeFile(join(d, `${n}.blockmap`), 'blockmap');
    }
    const first = names[0];
    const yml = `version: ${version}\nfiles:\n${entries.join('')}path: ${first}\nsha512: ${sha512(`the bytes of ${first}`)}\nreleaseDate: '2026-01-01T00:00:00.000Z'\n`;
    await writeFile(join(d, `latest-${platform}.yml`), yml);
  }
}

/** Why these steps' scripts cannot run here (they run on Linux runners: GNU base64, openssl, curl), or false. */
function cannotRun(...tools: string[]): string | false {
  if (process.platform !== 'linux') return 'these steps run on Linux runners (GNU base64)';
  const absent = tools.filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  return absent.length > 0 ? `not installed: ${absent.join(', ')}` : false;
}
const linuxShell = cannotRun('bash', 'awk', 'sed', 'openssl', 'base64');

test('the check of latest-*.yml passes on a whole release and fails on a broken one', { skip: linuxShell }, async () => {
  const check = step('release', 'metadata');
  const env = { LINUX_VERSION: '0.2.0', MAC_VERSION: '0.2.0' };
  const broken: [string, (dir: string) => Promise<void>, RegExp, RegExp?][] = [
    ['latest-linux.yml missing', (d) => rm(join(d, 'artifacts/release-linux/latest-linux.yml')), /latest-linux\.yml was not produced/],
    ['latest-mac.yml missing', (d) => rm(join(d, 'artifacts/release-mac/latest-mac.yml')), /latest-mac\.yml was not produced/],
    ['a file that is not the one listed', (d) => writeFile(join(d, 'artifacts/release-mac/Train at Home-0.2.0-arm64-mac.zip'), 'other bytes'), /the sha512 of Train at Home-0\.2\.0-arm64-mac\.zip is not the one/],
    ['a listed file missing', (d) => rm(join(d, 'artifacts/release-linux/train-at-home_0.2.0_amd64.deb')), /lists train-at-home_0\.2\.0_amd64\.deb, which was not built/],
    ['no blockmap for the zip', (d) => rm(join(d, 'artifacts/release-mac/Train at Home-0.2.0-arm64-mac.zip.blockmap')), /no blockmap for the macOS zip/],
    ['latest-mac.yml without the zip', async () => {}, /latest-mac\.yml lists no zip/, /\.zip$/],
    ['latest-linux.yml without the AppImage', async () => {}, /latest-linux\.yml lists no AppImage/, /\.AppImage$/],
  ];
  const dirs: string[] = [];
  try {
    const good = await mkdtemp(join(tmpdir(), 'tah-release-'));
    dirs.push(good);
    await fixture(good, '0.2.0');
    const ok = await runStep(check, good, env);
    assert.equal(ok.status, 0, ok.out);
    for (const f of ['mac Train at Home-0.2.0-arm64-mac.zip', 'mac Train at Home-0.2.0-arm64.dmg', 'linux Train at Home-0.2.0-x86_64.AppImage', 'linux train-at-home_0.2.0_amd64.deb']) assert.ok(ok.out.includes(`ok: ${f}`), f);
    const other = await runStep(check, good, { ...env, MAC_VERSION: '0.2.1' });
    assert.equal(other.status, 1, 'another version than the jobs built');
    for (const [what, breakIt, message, unlisted] of broken) {
      const d = await mkdtemp(join(tmpdir(), 'tah-release-'));
      dirs.push(d);
      await fixture(d, '0.2.0', unlisted);
      await breakIt(d);
      const r = await runStep(check, d, env);
      assert.equal(r.status, 1, what);
      assert.match(r.out, message, what);
    }
  } finally {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
});

test('after publishing, latest-*.yml and every file they name are read back from the update URL', { skip: linuxShell || cannotRun('curl') }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tah-served-'));
  // The bucket behind TAH_UPDATE_URL: both platforms' files in one folder, names with spaces.
  const served = new Map<string, string>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = path.startsWith('/desktop/') ? served.get(path.slice('/desktop/'.length)) : undefined;
    if (!file) return void res.writeHead(404).end();
    void readFile(file).then((data) => res.writeHead(200, { 'content-length': data.length }).end(req.method === 'HEAD' ? undefined : data));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/desktop/`;
  try {
    await fixture(dir, '0.2.0');
    assert.equal((await runStep(step('release', 'metadata'), dir, { LINUX_VERSION: '0.2.0', MAC_VERSION: '0.2.0' })).status, 0);
    const names: Record<string, string[]> = {
      mac: ['latest-mac.yml', 'Train at Home-0.2.0-arm64-mac.zip', 'Train at Home-0.2.0-arm64-mac.zip.blockmap', 'Train at Home-0.2.0-arm64.dmg', 'Train at Home-0.2.0-arm64.dmg.blockmap'],
      linux: ['latest-linux.yml', 'Train at Home-0.2.0-x86_64.AppImage', 'train-at-home_0.2.0_amd64.deb'],
    };
    for (const [platform, files] of Object.entries(names)) for (const n of files) served.set(n, join(dir, 'artifacts', `release-${platform}`, n));
    const ok = await runStep(step('release', 'served'), dir, { TAH_UPDATE_URL: url });
    assert.equal(ok.status, 0, ok.out);
    for (const n of Object.values(names).flat()) assert.ok(ok.out.includes(`ok: ${n}`), n);
    served.delete('Train at Home-0.2.0-arm64-mac.zip.blockmap');
    const missing = await runStep(step('release', 'served'), dir, { TAH_UPDATE_URL: url });
    assert.equal(missing.status, 1);
    assert.match(missing.out, /the update URL does not serve Train at Home-0\.2\.0-arm64-mac\.zip\.blockmap/);
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the staging step writes stagingPercentage below 100 only, and refuses anything but 0-100', { skip: linuxShell }, async () => {
  const staging = step('release', 'staging');
  assert.equal(staging.env?.STAGING_PERCENTAGE, "${{ inputs.staging_percentage || vars.TAH_STAGING_PERCENTAGE || '100' }}");
  const yml = 'version: 0.2.0\nfiles:\n  - url: a.zip\n    sha512: x\n    size: 1\n';
  const dir = await mkdtemp(join(tmpdir(), 'tah-staging-'));
  const files = ['artifacts/release-mac/latest-mac.yml', 'artifacts/release-linux/latest-linux.yml'].map((f) => join(dir, f));
  const reset = async () => {
    for (const f of files) {
      await mkdir(join(f, '..'), { recursive: true });
      await writeFile(f, yml);
    }
  };
  try {
    for (const [percent, expected] of [['10', `${yml}stagingPercentage: 10\n`], ['0', `${yml}stagingPercentage: 0\n`], ['007', `${yml}stagingPercentage: 7\n`], ['100', yml]] as const) {
      await reset();
      const r = await runStep(staging, dir, { STAGING_PERCENTAGE: percent });
      assert.equal(r.status, 0, r.out);
      for (const f of files) assert.equal(await readFile(f, 'utf8'), expected, `${f} at ${percent}`);
    }
    for (const percent of ['101', 'ten', '', '-5', '5%']) {
      await reset();
      const r = await runStep(staging, dir, { STAGING_PERCENTAGE: percent });
      assert.equal(r.status, 1, `refuses ${JSON.stringify(percent)}`);
      for (const f of files) assert.equal(await readFile(f, 'utf8'), yml);
    }
    await rm(files[1]);
    assert.equal((await runStep(staging, dir, { STAGING_PERCENTAGE: '100' })).status, 1, 'no latest-linux.yml, no release');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
