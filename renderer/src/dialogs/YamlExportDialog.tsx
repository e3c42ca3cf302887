/** The mergekit YAML of a Merge or MoE node, to copy or download and run with mergekit itself. */
import { useState, type ReactElement } from 'react';
import { docStore } from '../state/document';
import { useStore } from '../state/store';
import { closeDialog } from '../state/ui';
import { Dialog } from '../ui/Dialog';

export function YamlExportDialog({ nodeId, text }: { nodeId: string; text: string }): ReactElement {
  const node = useStore(docStore, (s) => s.doc.nodes.find((n) => n.id === nodeId));
  const [copied, setCopied] = useState(false);
  const name = `${(node?.label ?? nodeId).replace(/[^A-Za-z0-9._-]+/g, '-')}.yml`;
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'application/yaml' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    a.click();
    window.setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <Dialog
      title={`mergekit YAML — ${node?.label ?? nodeId}`}
      onClose={closeDialog}
      wide
      testId="yaml-export"
      footer={
        <>
          <div className="grow muted">{node?.type === 'moe' ? 'Run with mergekit-moe' : 'Run with mergekit-yaml'}</div>
          <button className="btn" onClick={download}>Download {name}</button>
          <button className="btn btn-primary" onClick={() => void navigator.clipboard?.writeText(text).then(() => setCopied(true))}>{copied ? 'Copied' : 'Copy'}</button>
        </>
      }
    >
      <pre className="code-block" data-testid="yaml-export-text">{text}</pre>
    </Dialog>
  );
}
