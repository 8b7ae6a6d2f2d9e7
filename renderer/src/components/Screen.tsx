// A screen's frame: its heading (focused after navigation, for screen readers; hidden from sight
// where the screen speaks for itself) and an intro line.
import type { ReactNode } from 'react';
import { useFocusOnNavigate } from '../hooks.ts';

export function Screen({ title, intro, children, testid, hideTitle = false }: { title: string; intro?: ReactNode; children: ReactNode; testid?: string; hideTitle?: boolean }) {
  const heading = useFocusOnNavigate<HTMLHeadingElement>();
  return (
    <section className="screen" aria-labelledby="screen-title" data-testid={testid}>
      <h1 id="screen-title" ref={heading} tabIndex={-1} className={hideTitle ? 'visually-hidden' : undefined}>
        {title}
      </h1>
      {intro ? <p className="intro">{intro}</p> : null}
      {children}
    </section>
  );
}
