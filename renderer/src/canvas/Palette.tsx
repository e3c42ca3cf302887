/**
 * The left sidebar: node types by category (drag onto the canvas, or click to add in the middle),
 * and files — the file browser and recently used checkpoints, also draggable.
 */
import { useEffect, useState, type DragEvent, type ReactElement } from 'react';
import { api } from '../api/client';
import type { NodeTypeDef } from '../api/types';
import { CATEGORY_LABEL, catalogStore } from '../state/catalog';
import { addNode, addPath } from '../state/edit';
import { inspectionStore } from '../state/inspections';
import { useStore } from '../state/store';
import { openDialog } from '../state/ui';
import { Icon, NODE_ICON } from '../ui/icons';
import { basename, dirname } from '../util/format';
import { NODE_MIME, PATH_MIME } from './dnd';
import { canvas } from './controller';

const CATEGORIES: NodeTypeDef['category'][] = ['sources', 'build', 'evaluate', 'output'];

function centre(): { x: number; y: number } {
  const c = canvas()?.center() ?? { x: 0, y: 0 };
  return { x: c.x - 110 + (Math.random() - 0.5) * 60, y: c.y - 60 + (Math.random() - 0.5) * 60 };
}

export function Palette(): ReactElement {
  const types = useStore(catalogStore, (s) => s.nodeTypes);
  const inspected = useStore(inspectionStore, (s) => Object.keys(s.byPath).length);
  const [recent, setRecent] = useState<string[]>([]);
  useEffect(() => {
    api.recent({}).then(setRecent, () => setRecent([]));
  }, [inspected]);

  const dragType = (type: string) => (e: DragEvent) => {
    e.dataTransfer.setData(NODE_MIME, type);
    e.dataTransfer.effectAllowed = 'copy';
  };
  const dragPath = (path: string) => (e: DragEvent) => {
    e.dataTransfer.setData(PATH_MIME, JSON.stringify({ path }));
    e.dataTransfer.setData('text/plain', path);
    e.dataTransfer.effectAllowed = 'copy';
  };

  return (
    <aside className="sidebar palette" data-testid="palette">
      <div className="side-section">
        <div className="side-title">Add nodes</div>
        <div className="side-hint">Drag onto the canvas, or click</div>
      </div>
      {CATEGORIES.map((cat) => {
        const list = Object.values(types).filter((t) => t.category === cat);
        if (!list.length) return null;
        return (
          <div className="palette-group" key={cat}>
            <div className="palette-cat">{CATEGORY_LABEL[cat]}</div>
            {list.map((t) => {
              const I = NODE_ICON[t.type] ?? Icon.Model;
              return (
                <div
                  key={t.type}
                  className={`palette-item cat-${t.category}`}
                  draggable
                  onDragStart={dragType(t.type)}
                  onClick={() => addNode(t.type, centre())}
                  title={t.description}
                  data-testid={`palette-${t.type}`}
                  role="button"
                  tabIndex={0}
                  onKeyDown={(e) => e.key === 'Enter' && addNode(t.type, centre())}
                >
                  <span className="palette-icon"><I /></span>
                  <span className="palette-text">
                    <span className="palette-label">{t.label}</span>
                    <span className="palette-desc">{t.description}</span>
                  </span>
                </div>
              );
            })}
          </div>
        );
      })}
      <div className="palette-group">
        <div className="palette-cat">Files</div>
        <button className="btn btn-block" onClick={() => openDialog({ kind: 'files', mode: 'add' })} data-testid="add-files">
          <Icon.Folder /> Browse files… <kbd>A</kbd>
        </button>
        {recent.length > 0 && <div className="palette-sub">Recently used</div>}
        {recent.slice(0, 8).map((p) => (
          <div key={p} className="recent-item" draggable onDragStart={dragPath(p)} onClick={() => void addPath(p, centre())} title={`${p}\nDrag onto the canvas, or click to add`} role="button" tabIndex={0}>
            <Icon.Model size={13} />
            <span className="recent-name">{basename(p)}</span>
            <span className="recent-dir">{basename(dirname(p))}</span>
          </div>
        ))}
      </div>
    </aside>
  );
}
