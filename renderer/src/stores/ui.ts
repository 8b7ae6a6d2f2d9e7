// The route, in a tiny router of our own: history.pushState and popstate, the address's query
// string (the browser host's bridge token) kept on every navigation so that a reload still works.
import { create } from 'zustand';
import { keptQuery } from '../bridge.ts';
import { clearErrors } from './app.ts';

export type Route =
  | { name: 'home' }
  | { name: 'earnings' }
  | { name: 'network' }
  | { name: 'settings' }
  | { name: 'logs' }
  /** Dashboard mode: one run's page (/runs/<run>); the newest run at /. */
  | { name: 'run'; runId: string };

export const APP_PAGES = ['home', 'earnings', 'network', 'settings', 'logs'] as const;
export type AppPage = (typeof APP_PAGES)[number];

export function parseRoute(pathname: string): Route {
  const parts = pathname.split('/').filter(Boolean);
  if (parts[0] === 'runs' && parts[1]) {
    try {
      return { name: 'run', runId: decodeURIComponent(parts[1]) };
    } catch {
      return { name: 'home' };
    }
  }
  const page = parts[0] as AppPage | undefined;
  if (page && page !== 'home' && (APP_PAGES as readonly string[]).includes(page)) return { name: page } as Route;
  return { name: 'home' };
}

export function pathOf(route: Route): string {
  if (route.name === 'run') return `/runs/${encodeURIComponent(route.runId)}`;
  return route.name === 'home' ? '/' : `/${route.name}`;
}

/** The address of a route, with the query string that must survive navigation. */
export function hrefOf(route: Route): string {
  return `${pathOf(route)}${keptQuery()}`;
}

interface UiStore {
  route: Route;
  /** Navigations since the page loaded: a screen moves focus to its heading only after one. */
  navigations: number;
}

export const useUi = create<UiStore>(() => ({ route: parseRoute(window.location.pathname), navigations: 0 }));

export function navigate(route: Route): void {
  const href = hrefOf(route);
  if (`${window.location.pathname}${window.location.search}` !== href) window.history.pushState(null, '', href);
  clearErrors();
  useUi.setState((s) => ({ route, navigations: s.navigations + 1 }));
}

window.addEventListener('popstate', () => {
  useUi.setState((s) => ({ route: parseRoute(window.location.pathname), navigations: s.navigations + 1 }));
});
