// The diagnostics report: one JSON file the user can attach to a bug report. Everything in it is
// redacted, and the finished text is checked once more, because it leaves the user's computer.
import { open } from 'node:fs/promises';
import os from 'node:os';
import { writeFileAtomic } from '../../orchestrator-client/files.ts';
import type { HardwareReport, Settings } from '../ipc-contract.ts';
import { findSecret, redact, redactValue } from './logs.ts';

/** The end of each log file that goes in: the newest part is the useful one. */
export const LOG_TAIL_BYTES = 2 * 1024 * 1024;

export interface DiagnosticsOptions {
  path: string;
  appVersion: string;
  settings: Settings;
  state: unknown;
  hardware: HardwareReport | null;
  logFiles: string[];
  now?: () => number;
}

type LogEntry = { path: string; text: string; truncated: boolean } | { path: string; missing: true } | { path: string; error: string };

export async function exportDiagnostics(opts: DiagnosticsOptions): Promise<{ path: string; bytes: number }> {
  const now = opts.now ?? Date.now;
  const logs: LogEntry[] = [];
  for (const path of opts.logFiles) logs.push(await readLog(path));
  const report = {
    created: new Date(now()).toISOString(),
    appVersion: opts.appVersion,
    versions: { ...process.versions },
    os: {
      platform: os.platform(),
      release: os.release(),
      arch: os.arch(),
      cpus: { model: os.cpus()[0]?.model.trim() ?? null, count: os.cpus().length },
      memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
      uptimeSeconds: Math.round(os.uptime()),
    },
    hardware: opts.hardware,
    // Settings hold no secrets; this removes a password someone put in the orchestrator's address.
    settings: redactValue(opts.settings),
    state: redactValue(opts.state),
    logs,
  };
  const text = `${JSON.stringify(report, null, 2)}\n`;
  // Better no file than a leaked key: redaction missed something, so nothing is written.
  const secret = findSecret(text);
  if (secret) throw new Error(`The diagnostics report was not saved because it still contained what looks like a secret key (${secret}).`);
  await writeFileAtomic(opts.path, text, { mode: 0o600 });
  return { path: opts.path, bytes: Buffer.byteLength(text) };
}

/** The newest lines of the logs, redacted, oldest first (the app's Logs screen). */
export async function recentLogLines(logFiles: string[], max = 300): Promise<string[]> {
  const lines: string[] = [];
  for (const path of logFiles) {
    const entry = await readLog(path, RECENT_TAIL_BYTES);
    if ('text' in entry) lines.push(...entry.text.split('\n').filter((l) => l.trim() !== ''));
  }
  // electron-log starts each line with its time ([2026-01-31 12:00:00.000]); interleave the files by it.
  const stamp = (l: string) => /^\[(\d{4}-\d\d-\d\d [\d:.]+)\]/.exec(l)?.[1] ?? '';
  return lines
    .map((l, i) => ({ l, i, t: stamp(l) }))
    .sort((a, b) => (a.t && b.t && a.t !== b.t ? (a.t < b.t ? -1 : 1) : a.i - b.i))
    .slice(-max)
    .map((x) => x.l);
}
const RECENT_TAIL_BYTES = 256 * 1024;

async function readLog(path: string, tailBytes = LOG_TAIL_BYTES): Promise<LogEntry> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, missing: true };
    return { path, error: redact((e as Error).message) };
  }
  try {
    const { size } = await fh.stat();
    const start = Math.max(0, size - tailBytes);
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await fh.read(buf, 0, buf.length, start);
    let text = buf.subarray(0, bytesRead).toString('utf8');
    // A cut mid-line could leave part of a secret too short to be recognised: drop that line.
    if (start > 0) text = text.includes('\n') ? text.slice(text.indexOf('\n') + 1) : '';
    return { path, text: redact(text), truncated: start > 0 };
  } catch (e) {
    return { path, error: redact((e as Error).message) };
  } finally {
    await fh.close();
  }
}
