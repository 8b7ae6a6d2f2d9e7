// `tah --help` and `tah train --help` describe the commands and options people need.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runTah, show, tempDir } from './run-tah.ts';

let dir = '';
let cleanup = async (): Promise<void> => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('help'));
});
after(() => cleanup());

test('tah --help lists the train, bench, export and setup commands', async () => {
  const r = await runTah(['--help'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  for (const command of ['train', 'bench', 'export', 'setup']) {
    assert.match(r.stdout, new RegExp(`^\\s+${command}\\b`, 'm'), `help does not list ${command}:\n${r.stdout}`);
  }
});

test('tah train --help shows --preset, --steps, --lr, --device and --json', async () => {
  const r = await runTah(['train', '--help'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /Usage: tah train/);
  for (const option of ['--preset', '--steps', '--lr', '--device', '--json']) {
    assert.match(r.stdout, new RegExp(`^\\s+${option}\\b`, 'm'), `train help does not show ${option}:\n${r.stdout}`);
  }
  // The device option names its choices.
  assert.match(r.stdout, /--device[^]*cpu[^]*cuda/);
});

test('tah setup --help lists cuda, which takes --json', async () => {
  const r = await runTah(['setup', '--help'], { cwd: dir });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^\s+cuda\b.*CUDA 12 provider/m);
  const cuda = await runTah(['setup', 'cuda', '--help'], { cwd: dir });
  assert.equal(cuda.code, 0, show(cuda));
  assert.match(cuda.stdout, /Usage: tah setup cuda/);
  assert.match(cuda.stdout, /^\s+--json\b/m);
});
