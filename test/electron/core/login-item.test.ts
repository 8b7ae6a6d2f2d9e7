// Start at login on Linux: an XDG autostart entry written, quoted and removed.
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { autostartPath, setLinuxAutostart } from '../../../electron/core/login-item.ts';
import { tempDir } from '../../cli/run-tah.ts';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => {
  ({ dir, cleanup } = await tempDir('tah-autostart-'));
});
after(() => cleanup());

test('enabling writes a desktop entry that starts the app hidden; disabling removes it', async () => {
  const env = { XDG_CONFIG_HOME: join(dir, 'config') };
  const opts = { id: 'train-at-home', name: 'Train at Home', executable: '/opt/Train at Home/train-at-home', args: ['--hidden'], env };
  await setLinuxAutostart({ ...opts, enabled: true });
  const path = autostartPath('train-at-home', env);
  assert.equal(path, join(dir, 'config', 'autostart', 'train-at-home.desktop'));
  const entry = await readFile(path, 'utf8');
  assert.match(entry, /^\[Desktop Entry\]\n/);
  assert.match(entry, /^Exec="\/opt\/Train at Home\/train-at-home" --hidden$/m);
  assert.match(entry, /^Type=Application$/m);
  await setLinuxAutostart({ ...opts, enabled: false });
  await assert.rejects(stat(path), { code: 'ENOENT' });
  // Disabling twice is fine.
  await setLinuxAutostart({ ...opts, enabled: false });
  await assert.rejects(setLinuxAutostart({ ...opts, executable: '/tmp/x\nExec=evil', enabled: true }), /line break/);
});
