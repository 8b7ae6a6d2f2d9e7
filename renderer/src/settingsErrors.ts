// Splits the bridge's refusal of a settings patch into the fields it names, so that each message
// shows next to its input. The message reads "settings:update: threads: Too big…; runId: …"
// (the contract's parseCall); anything that names no field is kept for the Save button.
import type { Settings } from '../../electron/ipc-contract.ts';

export type FieldErrors = Partial<Record<keyof Settings, string>>;

export function splitSettingsError(message: string | null | undefined, fields: readonly string[]): { fields: FieldErrors; rest: string | null } {
  if (!message) return { fields: {}, rest: null };
  const body = message.replace(/^settings:update:\s*/, '');
  const out: FieldErrors = {};
  const rest: string[] = [];
  for (const part of body.split('; ')) {
    const m = /^([A-Za-z]+): (.+)$/s.exec(part);
    if (m && fields.includes(m[1])) out[m[1] as keyof Settings] = m[2];
    else rest.push(part);
  }
  if (Object.keys(out).length === 0) return { fields: out, rest: message };
  return { fields: out, rest: rest.length ? rest.join('; ') : null };
}
