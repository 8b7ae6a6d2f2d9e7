// How long-running commands talk: a live progress bar (or periodic lines when stderr is not a
// terminal) for people, or with --json one JSON object per line on stdout, ending with an
// object that has "summary": true.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Advances the bar to `value` of `total` with a short status text. */
  update(value: number, status: string): void;
  stop(): void;
}

export interface Output {
  readonly json: boolean;
  /** A machine event (JSON mode only; people see the progress bar). */
  event(type: string, fields: Record<string, unknown>): void;
  /** A line for people (stderr), or a "note" event in JSON mode. */
  note(message: string): void;
  progress(label: string, total: number): Progress;
  /** The final object: JSON with "summary": true, or a short table for people. */
  summary(fields: Record<string, unknown>, human: string): void;
}

const round = (v: unknown): unknown => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v);

export function makeOutput(json: boolean, stream: NodeJS.WriteStream = process.stderr): Output {
  const line = (obj: Record<string, unknown>): void => {
    process.stdout.write(JSON.stringify(obj, (_k, v) => round(v)) + '\n');
  };
  return {
    json,
    event: (type, fields) => {
      if (json) line({ event: type, ...fields });
    },
    note: (message) => (json ? line({ event: 'note', message }) : void stream.write(`${message}\n`)),
    progress: (label, total) => {
      if (json) return { update: () => {}, stop: () => {} };
      if (!stream.isTTY) {
        // Logs and pipes: one line about every tenth of the way.
        const every = Math.max(1, Math.round(total / 10));
        return {
          update: (value, status) => {
            if (value % every === 0 || value === total) stream.write(`${label} ${value}/${total} ${status}\n`);
          },
          stop: () => {},
        };
      }
      const bar = new cliProgress.SingleBar(
        { format: `${label} {bar} {value}/{total} {status} | ETA {eta_formatted}`, hideCursor: true, stream, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { status: '' });
      return { update: (value, status) => bar.update(value, { status }), stop: () => bar.stop() };
    },
    summary: (fields, human) => (json ? line({ summary: true, ...fields }) : void process.stdout.write(`${human}\n`)),
  };
}

/** Prints an error as one line (and as a summary object in JSON mode) and sets a failing exit code. */
export function reportError(e: unknown, json: boolean): void {
  const message = e instanceof Error ? e.message : String(e);
  const oneLine = message.trim().replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
  if (json) process.stdout.write(JSON.stringify({ summary: true, ok: false, error: oneLine }) + '\n');
  process.stderr.write(`tah: error: ${oneLine}\n`);
  process.exitCode = 1;
}

/**
 * Graceful interruption for long commands: the first signal calls `onFirst` (finish what is in
 * hand) after printing `message`; a second quits at once with 130. `requested` says whether it
 * came; `dispose` removes the handlers.
 */
export function onInterrupt(out: Output, message: string, onFirst: () => void = () => {}, signals: NodeJS.Signals[] = ['SIGINT']): { readonly requested: boolean; dispose(): void } {
  let requested = false;
  const handler = (): void => {
    if (requested) process.exit(130);
    requested = true;
    out.note(`\n${message}`);
    onFirst();
  };
  for (const s of signals) process.on(s, handler);
  return {
    get requested() {
      return requested;
    },
    dispose: () => {
      for (const s of signals) process.off(s, handler);
    },
  };
}
