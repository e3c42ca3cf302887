/**
 * One form field for a node parameter, generated from its description (NODE_TYPES params or a merge
 * method's ParamDef). Text and numbers commit on Enter or when the field loses focus (one undo step
 * per commit); choices and switches commit at once. Invalid input is shown, not applied.
 */
import { useEffect, useState, type ReactElement } from 'react';
import { Icon } from '../ui/icons';

export type FieldKind = 'path' | 'text' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

export interface FieldSpec {
  key: string;
  label: string;
  kind: FieldKind;
  choices?: readonly string[];
  help?: string;
  placeholder?: string;
  required?: boolean;
}

function parse(kind: FieldKind, text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  switch (kind) {
    case 'number': {
      if (text.trim() === '') return { ok: true, value: undefined };
      const v = Number(text);
      return Number.isFinite(v) ? { ok: true, value: v } : { ok: false, error: 'a number, e.g. 0.5' };
    }
    case 'integer': {
      if (text.trim() === '') return { ok: true, value: undefined };
      const v = Number(text);
      return Number.isInteger(v) ? { ok: true, value: v } : { ok: false, error: 'a whole number' };
    }
    case 'json':
      try {
        return { ok: true, value: JSON.parse(text) as unknown };
      } catch (e) {
        return { ok: false, error: `not valid JSON (${e instanceof Error ? e.message : String(e)})` };
      }
    default:
      return { ok: true, value: text };
  }
}

function show(kind: FieldKind, v: unknown): string {
  if (v === undefined || v === null) return '';
  if (kind === 'json') return JSON.stringify(v, null, 1).replace(/\n\s*/g, ' ');
  return String(v);
}

export function ParamInput({ spec, value, onCommit, onBrowse }: { spec: FieldSpec; value: unknown; onCommit: (v: unknown) => void; onBrowse?: () => void }): ReactElement {
  const [text, setText] = useState(show(spec.kind, value));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setText(show(spec.kind, value));
    setError(null);
  }, [value, spec.kind]);

  const commit = () => {
    const r = parse(spec.kind, text);
    if (!r.ok) return setError(r.error);
    setError(null);
    if (JSON.stringify(r.value) !== JSON.stringify(value)) onCommit(r.value);
  };
  const id = `f-${spec.key}`;
  const label = (
    <label className="field-label" htmlFor={id} title={spec.help}>
      {spec.label}
      {spec.required && <span className="req">*</span>}
    </label>
  );

  let control: ReactElement;
  switch (spec.kind) {
    case 'boolean':
      return (
        <div className="field field-inline" data-field={spec.key}>
          <label className="switch">
            <input id={id} type="checkbox" checked={value === true} onChange={(e) => onCommit(e.target.checked)} />
            <span className="switch-track" />
          </label>
          {label}
          {spec.help && <div className="field-help">{spec.help}</div>}
        </div>
      );
    case 'enum':
      control = (
        <select id={id} value={value === undefined ? '' : String(value)} onChange={(e) => onCommit(e.target.value)}>
          {value === undefined && <option value="">{spec.placeholder ?? '(default)'}</option>}
          {spec.choices?.map((c) => <option key={c} value={c}>{c}</option>)}
        </select>
      );
      break;
    case 'json':
      control = (
        <textarea id={id} rows={Math.min(6, Math.max(2, text.length / 32))} spellCheck={false} value={text} placeholder={spec.placeholder} onChange={(e) => setText(e.target.value)} onBlur={commit}
          onKeyDown={(e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) commit(); }} />
      );
      break;
    case 'path':
      control = (
        <div className="path-input">
          <input id={id} type="text" value={text} placeholder="/absolute/path" spellCheck={false} onChange={(e) => setText(e.target.value)} onBlur={commit} onKeyDown={(e) => e.key === 'Enter' && commit()} />
          {onBrowse && <button className="btn btn-small" onClick={onBrowse} title="Browse files on the machine running the engine"><Icon.Folder size={14} /> Browse</button>}
        </div>
      );
      break;
    default:
      control = (
        <input id={id} type="text" inputMode={spec.kind === 'number' || spec.kind === 'integer' ? 'decimal' : undefined} value={text} placeholder={spec.placeholder} spellCheck={false}
          onChange={(e) => setText(e.target.value)} onBlur={commit} onKeyDown={(e) => e.key === 'Enter' && commit()} />
      );
  }
  return (
    <div className={`field${error ? ' has-error' : ''}`} data-field={spec.key}>
      {label}
      {control}
      {error ? <div className="field-error">{error}</div> : spec.help ? <div className="field-help">{spec.help}</div> : null}
    </div>
  );
}
