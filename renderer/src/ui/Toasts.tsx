/** The toast stack (bottom right). Errors carry "Copy details" for bug reports. */
import { useState, type ReactElement } from 'react';
import { dismiss, toastStore, type Toast } from '../state/toasts';
import { useStore } from '../state/store';
import { Icon } from './icons';

export function Toasts(): ReactElement {
  const toasts = useStore(toastStore, (s) => s.toasts);
  return (
    <div className="toasts" role="region" aria-label="Notifications" aria-live="polite">
      {toasts.map((t) => <ToastView key={t.id} t={t} />)}
    </div>
  );
}

function ToastView({ t }: { t: Toast }): ReactElement {
  const [copied, setCopied] = useState(false);
  const KindIcon = t.kind === 'error' ? Icon.Alert : t.kind === 'warn' ? Icon.Alert : t.kind === 'success' ? Icon.Check : Icon.Info;
  const copy = () => {
    const text = t.details ?? [t.title, t.message, t.hint, t.file].filter(Boolean).join('\n');
    void navigator.clipboard?.writeText(text).then(() => setCopied(true), () => setCopied(false));
  };
  return (
    <div className={`toast toast-${t.kind}`} data-testid={`toast-${t.kind}`} role={t.kind === 'error' ? 'alert' : 'status'}>
      <div className="toast-icon"><KindIcon /></div>
      <div className="toast-body">
        <div className="toast-title">{t.title}</div>
        {t.message && <div className="toast-message">{t.message}</div>}
        {t.file && !t.message?.includes(t.file) && <div className="toast-file" title={t.file}>{t.file}</div>}
        {t.hint && !t.message?.includes(t.hint) && <div className="toast-hint">→ {t.hint}</div>}
        {(t.actions?.length || t.kind === 'error') && (
          <div className="toast-actions">
            {t.actions?.map((a) => (
              <button key={a.label} className="btn btn-small" onClick={() => { a.run(); dismiss(t.id); }}>{a.label}</button>
            ))}
            {t.kind === 'error' && <button className="btn btn-small btn-ghost" onClick={copy}>{copied ? 'Copied' : 'Copy details'}</button>}
          </div>
        )}
      </div>
      <button className="icon-btn toast-close" aria-label="Dismiss" onClick={() => dismiss(t.id)}><Icon.Close size={14} /></button>
    </div>
  );
}
