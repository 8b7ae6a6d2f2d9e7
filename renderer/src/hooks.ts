// Small React hooks the screens share: polling while a screen is shown, a ticking clock, the
// system's colour scheme, and moving focus to a screen's heading after navigation.
import { type RefObject, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import { useUi } from './stores/ui.ts';

/** Calls `fn` now and every `ms` while mounted (and `enabled`); skips ticks while the page is hidden. */
export function usePoll(fn: () => unknown, ms: number, enabled = true, deps: readonly unknown[] = []): void {
  const latest = useRef(fn);
  useEffect(() => {
    latest.current = fn;
  });
  useEffect(() => {
    if (!enabled) return;
    void latest.current();
    const id = window.setInterval(() => {
      if (document.visibilityState !== 'hidden') void latest.current();
    }, ms);
    return () => window.clearInterval(id);
  }, [ms, enabled, ...deps]);
}

/** The current time, updated every `ms` (for uptimes and "updated 5 s ago"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(id);
  }, [ms]);
  return now;
}

const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');

/** 'dark' or 'light', following the system (charts read their colours from CSS variables). */
export function useColorScheme(): 'dark' | 'light' {
  return useSyncExternalStore(
    (onChange) => {
      darkQuery.addEventListener('change', onChange);
      return () => darkQuery.removeEventListener('change', onChange);
    },
    () => (darkQuery.matches ? 'dark' : 'light'),
  );
}

/** After an in-app navigation, focus the screen's heading so screen readers announce the new page. */
export function useFocusOnNavigate<T extends HTMLElement>(): RefObject<T | null> {
  const ref = useRef<T>(null);
  const navigations = useUi((s) => s.navigations);
  useEffect(() => {
    if (navigations > 0) ref.current?.focus();
  }, [navigations]);
  return ref;
}
