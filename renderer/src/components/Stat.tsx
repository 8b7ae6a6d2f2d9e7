// One labelled figure on a card (tokens processed, loss, uptime…). `value` keeps the raw number in a
// data attribute for tests and tools; the text is formatted for people.
import type { ReactNode } from 'react';

export function Stat({ label, testid, value, raw, hint }: { label: string; testid: string; value: ReactNode; raw?: number | null; hint?: ReactNode }) {
  return (
    <div className="stat">
      <dt>{label}</dt>
      <dd data-testid={testid} data-value={raw ?? undefined}>
        {value}
      </dd>
      {hint ? <dd className="stat-hint">{hint}</dd> : null}
    </div>
  );
}
