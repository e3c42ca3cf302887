/** A modal dialog: title bar, body, footer; Escape and the backdrop close it. */
import { useEffect, useRef, type ReactElement, type ReactNode } from 'react';
import { Icon } from './icons';

export function Dialog({ title, onClose, children, footer, wide, testId }: { title: ReactNode; onClose: () => void; children: ReactNode; footer?: ReactNode; wide?: boolean; testId?: string }): ReactElement {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const first = ref.current?.querySelector<HTMLElement>('[data-autofocus], input, textarea, select, button:not(.dialog-close)');
    first?.focus();
  }, []);
  return (
    <div className="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={`dialog${wide ? ' dialog-wide' : ''}`} role="dialog" aria-modal="true" ref={ref} data-testid={testId}>
        <div className="dialog-head">
          <div className="dialog-title">{title}</div>
          <button className="icon-btn dialog-close" aria-label="Close" onClick={onClose}><Icon.Close /></button>
        </div>
        <div className="dialog-body">{children}</div>
        {footer && <div className="dialog-foot">{footer}</div>}
      </div>
    </div>
  );
}
