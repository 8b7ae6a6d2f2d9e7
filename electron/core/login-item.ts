// Start at login on Linux, where Electron's setLoginItemSettings does nothing: an XDG autostart
// entry (~/.config/autostart/<id>.desktop), which GNOME, KDE and the others read at login.
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../orchestrator-client/files.ts';

export function autostartPath(id: string, env: NodeJS.ProcessEnv = process.env): string {
  const config = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(config, 'autostart', `${id}.desktop`);
}

/** Desktop Entry values may not hold newlines; a path with spaces is quoted for Exec. */
function execLine(executable: string, args: string[]): string {
  const quote = (s: string) => (/[\s"'\\$`]/.test(s) ? `"${s.replace(/(["\\$`])/g, '\\$1')}"` : s);
  return [executable, ...args].map(quote).join(' ');
}

export async function setLinuxAutostart(opts: { id: string; name: string; executable: string; args: string[]; enabled: boolean; env?: NodeJS.ProcessEnv }): Promise<void> {
  const path = autostartPath(opts.id, opts.env);
  if (!opts.enabled) {
    await rm(path, { force: true });
    return;
  }
  if (/[\r\n]/.test(opts.executable + opts.args.join(''))) throw new Error('the app path holds a line break; cannot write an autostart entry');
  const entry = ['[Desktop Entry]', 'Type=Application', `Name=${opts.name}`, `Exec=${execLine(opts.executable, opts.args)}`, 'X-GNOME-Autostart-enabled=true', 'NoDisplay=false', 'Terminal=false', ''].join('\n');
  await writeFileAtomic(path, entry, { mode: 0o644, createParents: 0o755 });
}
