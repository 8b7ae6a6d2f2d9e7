// The app's log file (electron-log) and the redaction every line goes through on its way there.
// Logs end up in diagnostics reports that users send to strangers, so anything that could be a
// wallet secret is removed before it is written, not when it is exported.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import englishWords from '@polkadot/util-crypto/mnemonic/wordlists/en';
import type { Hook, LevelOption, LogFunctions, NodeLogger, TransformFn } from 'electron-log';

export const LOG_FILE = 'main.log';
/** electron-log moves a full main.log here (one generation). */
export const OLD_LOG_FILE = 'main.old.log';
export const MAX_LOG_BYTES = 5 * 1024 * 1024;
export const WORKER_SCOPE = 'worker';

// ---- redaction ----

const BIP39 = new Set(englishWords);
/** The shortest BIP-39 mnemonic; 15, 18, 21 and 24 words contain a run of 12. */
const MNEMONIC_WORDS = 12;

/** Seeds, private keys (and, as collateral, public keys and sha256 digests): 64+ hex digits. */
const LONG_HEX = /(?:0x)?[0-9a-fA-F]{64,}/g;
/** scheme://user:password@ — userinfo stops at the first character that cannot be in it. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"'<>\\]+@/gi;
/** Candidate word runs, checked against the BIP-39 list below. */
const WORD_RUN = new RegExp(`\\b[a-z]+(?:\\s+[a-z]+){${MNEMONIC_WORDS - 1},}\\b`, 'gi');
/** "mnemonic: …", "recovery phrase …": the words after these go even if some are misspelt. */
const AFTER_PHRASE_WORD = new RegExp(`(mnemonic|phrase)(["'\\s:=]*)[a-z]+(?:\\s+[a-z]+){${MNEMONIC_WORDS - 1},}`, 'gi');
/** Field names whose value is a secret, as JSON, JS (util.inspect) or key=value text spells them. */
const SECRET_KEY_NAMES = 'secret[_-]?phrase|secret[_-]?seed|secret[_-]?key|private[_-]?key|seed[_-]?hex|mnemonic|password|passphrase';
const SECRET_KEY = new RegExp(`^(?:${SECRET_KEY_NAMES})$`, 'i');
const SECRET_FIELD = new RegExp(
  `(["']?)(${SECRET_KEY_NAMES})\\1(\\s*[:=]\\s*)(?!["']?\\[redacted)("(?:[^"\\\\\\n]|\\\\.)*"|'(?:[^'\\\\\\n]|\\\\.)*'|[^\\s,;}\\])]+)`,
  'gi',
);

export const REDACTED = '[redacted]';

/** `text` without anything that looks like a wallet secret or a password in a URL. */
export function redact(text: string): string {
  return text
    .replace(LONG_HEX, REDACTED)
    .replace(URL_USERINFO, '$1***@')
    .replace(AFTER_PHRASE_WORD, `$1$2${REDACTED}`)
    .replace(WORD_RUN, redactMnemonics)
    .replace(SECRET_FIELD, (_m, q: string, key: string, sep: string, value: string) => {
      const quote = value[0] === '"' || value[0] === "'" ? value[0] : '';
      return `${q}${key}${q}${sep}${quote}${REDACTED}${quote}`;
    });
}

/** Within a run of words, replaces every stretch of 12 or more BIP-39 words. */
function redactMnemonics(run: string): string {
  const parts = run.split(/(\s+)/); // word k at 2k, the space after it at 2k + 1
  const after = (k: number): string => parts[2 * k + 1] ?? '';
  const count = (parts.length + 1) / 2;
  let out = '';
  for (let w = 0; w < count; ) {
    let end = w;
    while (end < count && BIP39.has(parts[2 * end].toLowerCase())) end++;
    if (end - w >= MNEMONIC_WORDS) {
      out += REDACTED + after(end - 1);
      w = end;
    } else {
      out += parts[2 * w] + after(w);
      w++;
    }
  }
  return out;
}

/**
 * A copy of `value` for a log or report: strings redacted, fields named like secrets replaced
 * whatever they hold, raw bytes dropped (they could be a key), cycles and depth cut.
 */
export function redactValue(value: unknown): unknown {
  return walk(value, 0, new WeakSet());
}

const MAX_DEPTH = 8;

function walk(v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof v === 'string') return redact(v);
  if (typeof v === 'bigint') return redact(String(v)); // JSON cannot hold a bigint; a long one could be a key
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof Date) return v;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return `[${v.byteLength} bytes]`;
  // What JSON would write for it (a class with its own toJSON), redacted like the rest.
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function' && depth < MAX_DEPTH) {
    let json: unknown;
    try {
      json = (v as { toJSON(): unknown }).toJSON();
    } catch {
      return '[unserialisable]';
    }
    return walk(json, depth + 1, seen);
  }
  if (seen.has(v)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[…]';
  seen.add(v);
  try {
    if (v instanceof Error) {
      const copy = new Error(redact(v.message));
      copy.name = v.name;
      copy.stack = v.stack === undefined ? undefined : redact(v.stack);
      const code = (v as NodeJS.ErrnoException).code;
      if (code !== undefined) Object.assign(copy, { code });
      return copy;
    }
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1, seen));
    if (v instanceof Set) return [...v].map((x) => walk(x, depth + 1, seen));
    const entries = v instanceof Map ? [...v.entries()].map(([k, x]) => [String(k), x] as const) : Object.entries(v);
    const out: Record<string, unknown> = {};
    for (const [k, x] of entries) {
      const secret = SECRET_KEY.test(k) && x !== null && x !== undefined && typeof x !== 'boolean';
      out[redact(k)] = secret ? REDACTED : walk(x, depth + 1, seen); // a map keyed by seed is still a seed
    }
    return out;
  } finally {
    seen.delete(v); // a value seen twice side by side is not a cycle
  }
}

/** What in `text` still looks like a secret (for last-line checks), or null. */
export function findSecret(text: string): string | null {
  if (/[0-9a-fA-F]{64,}/.test(text)) return 'a run of 64 or more hex digits';
  for (const run of text.match(WORD_RUN) ?? []) {
    if (redactMnemonics(run) !== run) return 'a run of recovery-phrase words';
  }
  return null;
}

// ---- electron-log ----

export interface LogOptions {
  /** The folder for main.log (and main.old.log after rotation). */
  dir: string;
  /** Lowest level written to the file (default 'info'). */
  level?: LevelOption;
  /** Lowest level shown on the console; absent: electron-log's default. */
  consoleLevel?: LevelOption;
}

const configured = new WeakSet<object>();

const redactHook: Hook = (message) => ({ ...message, data: message.data.map(redactValue) });
/** The file's last step, on the finished line: a second net after the hook. */
const redactLine: TransformFn = ({ data }) => (typeof data === 'string' ? redact(data) : data);

/**
 * Points `log` (the electron-log main or node logger) at `<dir>/main.log`, rotated at 5 MiB, with
 * ISO times, the level and the scope on each line, and every message redacted. Safe to call again
 * (e.g. with another level). Returns the log file's path.
 */
export function configureLog(log: NodeLogger, opts: LogOptions): string {
  // Logs show what the user did and where their files are: theirs only.
  mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
  const file = join(opts.dir, LOG_FILE);
  const t = log.transports.file;
  t.resolvePathFn = () => file;
  t.fileName = LOG_FILE;
  t.maxSize = MAX_LOG_BYTES;
  t.level = opts.level ?? 'info';
  t.format = '[{iso}] [{level}]{scope} {text}';
  t.writeOptions = { ...t.writeOptions, mode: 0o600 };
  if (opts.consoleLevel !== undefined) log.transports.console.level = opts.consoleLevel;
  log.transports.console.format = '[{iso}] [{level}]{scope} {text}';
  log.scope.labelPadding = false; // "(worker)" only on worker lines, no blank padding on the others
  if (!configured.has(log)) {
    configured.add(log);
    log.hooks.push(redactHook);
    t.transforms = [...t.transforms, redactLine];
  }
  return file;
}

/** The logger the worker's events go through: the same file, scope "worker". */
export function workerLog(log: NodeLogger): LogFunctions {
  return log.scope(WORKER_SCOPE);
}

/** The log files of `dir`, newest first, for a diagnostics report. */
export function logFiles(dir: string): string[] {
  return [join(dir, LOG_FILE), join(dir, OLD_LOG_FILE)];
}
