// bin/tah.js runs the bundled CLI only while it is newer than every file it was built from, and
// the bundle is the same `tah` as the sources. The first test runs bin/tah.js in a scratch
// project whose "bundle" and "sources" only say which of them ran; the second builds the real
// bundle the way `npm test` and `npm start` do and runs it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { buildCli } from '../../scripts/build-cli.ts';
import { tempDir } from '../cli/run-tah.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

async function which(root: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { stdout } = await run(process.execPath, [join(root, 'bin/tah.js')], { env: { ...process.env, TAH_FROM_SOURCE: '', ...env } });
  return stdout.trim();
}

test('bin/tah.js runs the bundle while it is fresh, the sources once an input is newer, missing, or TAH_FROM_SOURCE is set', async () => {
  const { dir, cleanup } = await tempDir('tah-bin-');
  try {
    await mkdir(join(dir, 'bin'));
    await mkdir(join(dir, 'cli'));
    await mkdir(join(dir, 'dist/cli'), { recursive: true });
    await copyFile(join(ROOT, 'bin/tah.js'), join(dir, 'bin/tah.js'));
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    await writeFile(join(dir, 'cli/tah.ts'), "const from: string = 'sources';\nconsole.log(from);\n");
    await writeFile(join(dir, 'dist/cli/tah.mjs'), "console.log('bundle');\n");
    await writeFile(join(dir, 'dist/cli/inputs.json'), JSON.stringify({ inputs: ['cli/tah.ts'] }));
    const past = new Date(Date.now() - 60_000);
    await utimes(join(dir, 'cli/tah.ts'), past, past);

    assert.equal(await which(dir), 'bundle');
    assert.equal(await which(dir, { TAH_FROM_SOURCE: '1' }), 'sources');
    await utimes(join(dir, 'cli/tah.ts'), new Date(), new Date(Date.now() + 5_000));
    assert.equal(await which(dir), 'sources', 'a source edited after the build');
    await utimes(join(dir, 'cli/tah.ts'), past, past);
    await writeFile(join(dir, 'dist/cli/inputs.json'), JSON.stringify({ inputs: ['cli/tah.ts', 'cli/gone.ts'] }));
    assert.equal(await which(dir), 'sources', 'an input that no longer exists');
    await writeFile(join(dir, 'dist/cli/inputs.json'), '{ not json');
    assert.equal(await which(dir), 'sources', 'a damaged inputs list');
  } finally {
    await cleanup();
  }
});

test('the bundle lists its sources, the presets and the lockfile, and answers as the sources do', async () => {
  await buildCli(join(ROOT, 'dist'));
  const { inputs } = JSON.parse(await readFile(join(ROOT, 'dist/cli/inputs.json'), 'utf8')) as { inputs: string[] };
  for (const f of ['cli/tah.ts', 'cli/commands/miner.ts', 'orchestrator/coordinator.ts', 'worker/miner/replica.ts', 'electron/worker/entry.ts', 'worker/model/presets/tiny.json', 'package-lock.json']) assert.ok(inputs.includes(f), f);
  assert.ok(!inputs.some((f) => f.startsWith('node_modules/') || f.startsWith('test/')));
  const bundled = await run(process.execPath, [join(ROOT, 'bin/tah.js'), 'swarm', '--help'], { env: { ...process.env, TAH_FROM_SOURCE: '' } });
  const sources = await run(process.execPath, [join(ROOT, 'bin/tah.js'), 'swarm', '--help'], { env: { ...process.env, TAH_FROM_SOURCE: '1' } });
  assert.equal(bundled.stdout, sources.stdout);
  assert.match(bundled.stdout, /--preset/);
});
