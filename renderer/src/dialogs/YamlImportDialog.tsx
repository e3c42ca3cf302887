/**
 * Paste a mergekit (merge_method …) or mergekit-moe (experts …) YAML; its models become checkpoint
 * nodes wired into a Merge or MoE node beside what is already on the canvas (one undo step).
 */
import { useState, type ReactElement } from 'react';
import { importYaml } from '../state/files';
import { useStore } from '../state/store';
import { closeDialog, uiStore } from '../state/ui';
import { Dialog } from '../ui/Dialog';
import { isAbsolutePath } from '../util/format';

const EXAMPLE = `merge_method: ties
base_model: models/base
models:
  - model: models/ffn-add
    parameters: { weight: 1.0, density: 0.5 }
  - model: models/ffn-rev
    parameters: { weight: 1.0, density: 0.5 }
parameters: { normalize: true }
dtype: float32`;

export function YamlImportDialog(): ReactElement {
  const lastDir = useStore(uiStore, (s) => s.lastDir);
  const [text, setText] = useState('');
  const [baseDir, setBaseDir] = useState(lastDir ?? '');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    if (baseDir && !isAbsolutePath(baseDir)) return setError('the folder for relative paths must be an absolute path');
    setBusy(true);
    const err = await importYaml(text, baseDir || undefined);
    setBusy(false);
    if (err) setError(err);
    else closeDialog();
  };
  return (
    <Dialog
      title="Import mergekit YAML"
      onClose={closeDialog}
      wide
      testId="yaml-import"
      footer={
        <>
          <div className="grow muted">mergekit-yaml and mergekit-moe configs; slices are not supported on the canvas.</div>
          <button className="btn" onClick={closeDialog}>Cancel</button>
          <button className="btn btn-primary" disabled={!text.trim() || busy} onClick={() => void submit()} data-testid="yaml-import-ok">Import</button>
        </>
      }
    >
      <div className="field">
        <label className="field-label" htmlFor="yaml-text">YAML</label>
        <textarea id="yaml-text" className="code" rows={14} spellCheck={false} value={text} placeholder={EXAMPLE} onChange={(e) => { setText(e.target.value); setError(null); }} data-autofocus data-testid="yaml-text" />
      </div>
      <div className="field">
        <label className="field-label" htmlFor="yaml-base">Relative model paths are inside</label>
        <input id="yaml-base" type="text" value={baseDir} placeholder="/path/to/models (for relative paths)" spellCheck={false} onChange={(e) => setBaseDir(e.target.value)} data-testid="yaml-base" />
      </div>
      {error && <div className="fb-error" data-testid="yaml-error">{error}</div>}
    </Dialog>
  );
}
