// AppState.notices as banners that stay until the user dismisses them (notice:dismiss).
import { actions, useApp } from '../stores/app.ts';
import { ErrorText } from './ErrorText.tsx';

export function Notices() {
  const notices = useApp((s) => s.state?.notices);
  const error = useApp((s) => s.errors.notice);
  if (!notices?.length && !error) return null;
  return (
    <div className="notices">
      {notices?.map((n) => (
        <div key={n.id} className={`notice notice-${n.level}`} role={n.level === 'error' ? 'alert' : 'status'} data-testid="notice" data-notice-id={n.id}>
          <p>{n.message}</p>
          <button type="button" className="ghost" data-testid="notice-dismiss" aria-label={`Dismiss: ${n.message}`} onClick={() => void actions.dismissNotice(n.id)}>
            Dismiss
          </button>
        </div>
      ))}
      <ErrorText message={error} />
    </div>
  );
}
