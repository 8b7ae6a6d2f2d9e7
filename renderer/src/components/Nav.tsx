// The app's navigation: real links (so that they work without JavaScript tricks and can be opened
// again after a reload) whose clicks are handled by the tiny router.
import type { MouseEvent } from 'react';
import { type AppPage, hrefOf, navigate, useUi } from '../stores/ui.ts';

const LINKS: { page: AppPage; label: string }[] = [
  { page: 'home', label: 'Home' },
  { page: 'earnings', label: 'Earnings' },
  { page: 'network', label: 'Network' },
  { page: 'settings', label: 'Settings' },
  { page: 'logs', label: 'Logs' },
];

export function Nav() {
  const current = useUi((s) => s.route.name);
  return (
    <nav aria-label="Main">
      <ul className="nav">
        {LINKS.map(({ page, label }) => (
          <li key={page}>
            <a
              href={hrefOf({ name: page })}
              data-testid={`nav-${page}`}
              aria-current={current === page ? 'page' : undefined}
              onClick={(e: MouseEvent<HTMLAnchorElement>) => {
                if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
                e.preventDefault();
                navigate({ name: page });
              }}
            >
              {label}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}
