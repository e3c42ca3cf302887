/** Whichever dialog is open. */
import type { ReactElement } from 'react';
import { useStore } from '../state/store';
import { uiStore } from '../state/ui';
import { FileBrowser } from './FileBrowser';
import { HelpOverlay } from './HelpOverlay';
import { YamlExportDialog } from './YamlExportDialog';
import { YamlImportDialog } from './YamlImportDialog';

export function Dialogs(): ReactElement | null {
  const d = useStore(uiStore, (s) => s.dialog);
  if (!d) return null;
  switch (d.kind) {
    case 'files':
      return <FileBrowser key={d.mode} dlg={d} />;
    case 'importYaml':
      return <YamlImportDialog />;
    case 'exportYaml':
      return <YamlExportDialog nodeId={d.nodeId} text={d.text} />;
    case 'help':
      return <HelpOverlay />;
  }
}
