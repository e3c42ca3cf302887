/** Every keyboard shortcut, from the command registry (so the list is never out of date). */
import type { ReactElement } from 'react';
import { COMMANDS, type Command } from '../commands';
import { closeDialog } from '../state/ui';
import { Dialog } from '../ui/Dialog';

const GROUPS: Command['group'][] = ['Run', 'Edit', 'File', 'View'];
const isMac = /Mac|iPhone|iPad/.test(navigator.platform);

function Keys({ keys }: { keys: string }): ReactElement {
  return <span className="keys">{keys.split('+').map((k, i) => <kbd key={i}>{k === 'Ctrl' && isMac ? '⌘' : k}</kbd>)}</span>;
}

export function HelpOverlay(): ReactElement {
  return (
    <Dialog title="Keyboard shortcuts" onClose={closeDialog} wide testId="help-overlay">
      <div className="help-grid">
        {GROUPS.map((g) => (
          <div key={g} className="help-group">
            <div className="help-title">{g}</div>
            {COMMANDS.filter((c) => c.group === g).map((c) => (
              <div key={c.id} className="help-row">
                <span>{c.label}</span>
                <span className="help-keys">{c.keys.map((k, i) => <span key={k}>{i > 0 && <span className="muted"> or </span>}<Keys keys={k} /></span>)}</span>
              </div>
            ))}
          </div>
        ))}
        <div className="help-group">
          <div className="help-title">Canvas</div>
          <div className="help-row"><span>Pan</span><span className="help-keys"><span className="muted">drag the background</span></span></div>
          <div className="help-row"><span>Zoom</span><span className="help-keys"><span className="muted">mouse wheel / pinch</span></span></div>
          <div className="help-row"><span>Box-select</span><span className="help-keys"><Keys keys="Shift" /> <span className="muted">+ drag</span></span></div>
          <div className="help-row"><span>Add to selection</span><span className="help-keys"><Keys keys="Ctrl" /> <span className="muted">+ click</span></span></div>
          <div className="help-row"><span>Connect</span><span className="help-keys"><span className="muted">drag output port → input port</span></span></div>
        </div>
      </div>
    </Dialog>
  );
}
