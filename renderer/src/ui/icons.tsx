/** Inline SVG icons (no icon font, no remote assets): 16×16 strokes that take the text colour. */
import type { ReactElement, ReactNode, SVGProps } from 'react';

type P = SVGProps<SVGSVGElement> & { size?: number };

function Svg({ size = 16, children, ...rest }: P & { children: ReactNode }): ReactElement {
  return (
    <svg width={size} height={size} viewBox="0 0 16 16" fill="none" stroke="currentColor" strokeWidth={1.5} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true" {...rest}>
      {children}
    </svg>
  );
}

export const Icon = {
  Play: (p: P) => <Svg {...p}><path d="M4.5 3.2v9.6L12.5 8z" fill="currentColor" /></Svg>,
  PlayNode: (p: P) => <Svg {...p}><path d="M3 3.5v9L9.5 8z" fill="currentColor" /><path d="M12 4v8" /></Svg>,
  Stop: (p: P) => <Svg {...p}><rect x="4" y="4" width="8" height="8" rx="1.5" fill="currentColor" /></Svg>,
  Undo: (p: P) => <Svg {...p}><path d="M6 4 3 7l3 3" /><path d="M3 7h6.5a3.5 3.5 0 0 1 0 7H8" /></Svg>,
  Redo: (p: P) => <Svg {...p}><path d="m10 4 3 3-3 3" /><path d="M13 7H6.5a3.5 3.5 0 0 0 0 7H8" /></Svg>,
  Open: (p: P) => <Svg {...p}><path d="M2 4.5V12a1 1 0 0 0 1 1h9.5l2-6H5L3 12" /><path d="M2 4.5A1.5 1.5 0 0 1 3.5 3H6l1.5 1.5H12a1 1 0 0 1 1 1V7" /></Svg>,
  Save: (p: P) => <Svg {...p}><path d="M3 2.5h8l2.5 2.5v8.5H2.5V3a.5.5 0 0 1 .5-.5z" /><path d="M5 2.5v3.5h5V2.5M5 13.5V9.5h6v4" /></Svg>,
  Import: (p: P) => <Svg {...p}><path d="M8 2v8M5 7l3 3 3-3" /><path d="M3 11v2.5h10V11" /></Svg>,
  Export: (p: P) => <Svg {...p}><path d="M8 10V2M5 5l3-3 3 3" /><path d="M3 11v2.5h10V11" /></Svg>,
  Sun: (p: P) => <Svg {...p}><circle cx="8" cy="8" r="3" /><path d="M8 1.5v1.5M8 13v1.5M1.5 8H3M13 8h1.5M3.4 3.4l1 1M11.6 11.6l1 1M3.4 12.6l1-1M11.6 4.4l1-1" /></Svg>,
  Moon: (p: P) => <Svg {...p}><path d="M13 9.5A5.5 5.5 0 0 1 6.5 3a5.5 5.5 0 1 0 6.5 6.5z" /></Svg>,
  Help: (p: P) => <Svg {...p}><circle cx="8" cy="8" r="6.2" /><path d="M6.3 6.2a1.8 1.8 0 1 1 2.4 1.7c-.5.2-.7.6-.7 1.1v.4" /><circle cx="8" cy="11.4" r=".5" fill="currentColor" /></Svg>,
  Keyboard: (p: P) => <Svg {...p}><rect x="1.5" y="4" width="13" height="8" rx="1.5" /><path d="M4 6.5h.01M6.5 6.5h.01M9 6.5h.01M11.5 6.5h.01M5 9.5h6" /></Svg>,
  Plus: (p: P) => <Svg {...p}><path d="M8 3v10M3 8h10" /></Svg>,
  Trash: (p: P) => <Svg {...p}><path d="M2.5 4.5h11M6 4.5V3h4v1.5M4 4.5l.7 9h6.6l.7-9" /></Svg>,
  Copy: (p: P) => <Svg {...p}><rect x="5" y="5" width="8.5" height="8.5" rx="1.5" /><path d="M11 5V3.5A1 1 0 0 0 10 2.5H3.5a1 1 0 0 0-1 1V10a1 1 0 0 0 1 1H5" /></Svg>,
  Close: (p: P) => <Svg {...p}><path d="m4 4 8 8M12 4l-8 8" /></Svg>,
  ChevronRight: (p: P) => <Svg {...p}><path d="m6 3.5 4.5 4.5L6 12.5" /></Svg>,
  ChevronDown: (p: P) => <Svg {...p}><path d="m3.5 6 4.5 4.5L12.5 6" /></Svg>,
  Up: (p: P) => <Svg {...p}><path d="M8 13V3M4 7l4-4 4 4" /></Svg>,
  Folder: (p: P) => <Svg {...p}><path d="M2 4.5A1.5 1.5 0 0 1 3.5 3H6l1.5 1.5h5A1.5 1.5 0 0 1 14 6v5.5a1.5 1.5 0 0 1-1.5 1.5h-9A1.5 1.5 0 0 1 2 11.5z" /></Svg>,
  File: (p: P) => <Svg {...p}><path d="M4 1.5h5.5L12.5 4.5v10H4z" /><path d="M9.5 1.5v3h3" /></Svg>,
  Model: (p: P) => <Svg {...p}><path d="M8 1.8 13.5 5v6L8 14.2 2.5 11V5z" /><path d="M2.5 5 8 8.2 13.5 5M8 8.2v6" /></Svg>,
  Adapter: (p: P) => <Svg {...p}><path d="M2 6 8 3l6 3-6 3z" /><path d="m2 10 6 3 6-3" /></Svg>,
  Dataset: (p: P) => <Svg {...p}><ellipse cx="8" cy="4" rx="5" ry="2" /><path d="M3 4v8c0 1.1 2.2 2 5 2s5-.9 5-2V4M3 8c0 1.1 2.2 2 5 2s5-.9 5-2" /></Svg>,
  Merge: (p: P) => <Svg {...p}><circle cx="3.5" cy="4" r="1.5" /><circle cx="3.5" cy="12" r="1.5" /><circle cx="12.5" cy="8" r="1.5" /><path d="M5 4.5c3 .5 3 3.5 6 3.5M5 11.5c3-.5 3-3.5 6-3.5" /></Svg>,
  Moe: (p: P) => <Svg {...p}><circle cx="3" cy="8" r="1.5" /><rect x="7" y="1.8" width="3.5" height="3" rx=".8" /><rect x="7" y="6.5" width="3.5" height="3" rx=".8" /><rect x="7" y="11.2" width="3.5" height="3" rx=".8" /><path d="M4.5 8c1 0 1-4.7 2.5-4.7M4.5 8H7M4.5 8c1 0 1 4.7 2.5 4.7M10.5 3.3H13M10.5 8H13M10.5 12.7H13" /></Svg>,
  Gauge: (p: P) => <Svg {...p}><path d="M2.5 11.5a5.5 5.5 0 1 1 11 0" /><path d="m8 11.5 2.8-3.8" /><circle cx="8" cy="11.5" r=".8" fill="currentColor" /></Svg>,
  Package: (p: P) => <Svg {...p}><path d="M2.5 5 8 2.5 13.5 5v6.5L8 14l-5.5-2.5z" /><path d="M2.5 5 8 7.5 13.5 5M8 7.5V14M5.2 3.7l5.6 2.6" /></Svg>,
  Grow: (p: P) => <Svg {...p}><circle cx="3.5" cy="8" r="1.6" /><circle cx="12.5" cy="3" r="1.4" /><circle cx="12.5" cy="8" r="1.4" /><circle cx="12.5" cy="13" r="1.4" /><path d="M5 8h6M5.2 7.2 11 3.4M5.2 8.8 11 12.6" /></Svg>,
  Router: (p: P) => <Svg {...p}><circle cx="3" cy="8" r="1.6" /><circle cx="13" cy="3.5" r="1.6" /><circle cx="13" cy="12.5" r="1.6" /><path d="M4.6 8h3.2l3.6-4.2M7.8 8l3.6 4.2" /></Svg>,
  Evolve: (p: P) => <Svg {...p}><path d="M5 2c0 3 6 3 6 6s-6 3-6 6M11 2c0 3-6 3-6 6s6 3 6 6" /><path d="M6 4.5h4M6 11.5h4" /></Svg>,
  History: (p: P) => <Svg {...p}><path d="M2.5 8a5.5 5.5 0 1 0 1.6-3.9" /><path d="M2.5 2.5v2.8h2.8M8 5v3.2l2 1.3" /></Svg>,
  Canvas: (p: P) => <Svg {...p}><rect x="1.5" y="3" width="4" height="3.5" rx=".8" /><rect x="10.5" y="9.5" width="4" height="3.5" rx=".8" /><rect x="10.5" y="3" width="4" height="3.5" rx=".8" /><path d="M5.5 4.7h5M5.5 4.7c2.5 0 2.5 6.6 5 6.6" /></Svg>,
  Search: (p: P) => <Svg {...p}><circle cx="7" cy="7" r="4.5" /><path d="m10.5 10.5 3.5 3.5" /></Svg>,
  Refresh: (p: P) => <Svg {...p}><path d="M13.5 8A5.5 5.5 0 1 1 11.9 4" /><path d="M13.5 2.5v3h-3" /></Svg>,
  Check: (p: P) => <Svg {...p}><path d="m3 8.5 3 3 7-7" /></Svg>,
  Alert: (p: P) => <Svg {...p}><path d="M8 2 14.5 13.5h-13z" /><path d="M8 6.5v3" /><circle cx="8" cy="11.5" r=".5" fill="currentColor" /></Svg>,
  Info: (p: P) => <Svg {...p}><circle cx="8" cy="8" r="6.2" /><path d="M8 7.2v4" /><circle cx="8" cy="5" r=".5" fill="currentColor" /></Svg>,
  Compare: (p: P) => <Svg {...p}><rect x="2" y="2.5" width="5" height="11" rx="1" /><rect x="9" y="2.5" width="5" height="11" rx="1" /><path d="M4 6h1M11 6h1M4 9h1M11 9h1" /></Svg>,
  Terminal: (p: P) => <Svg {...p}><rect x="1.5" y="2.5" width="13" height="11" rx="1.5" /><path d="m4.5 6 2 2-2 2M8 10.5h3.5" /></Svg>,
  Yaml: (p: P) => <Svg {...p}><path d="M4 1.5h5.5L12.5 4.5v10H4z" /><path d="M6 8h4M6 10.5h2.5M6 5.5h1.5" /></Svg>,
  Link: (p: P) => <Svg {...p}><path d="M9 3h4v4M13 3 7.5 8.5M11 9.5V13H3V5h3.5" /></Svg>,
  Logo: (p: P) => (
    <svg width={p.size ?? 22} height={p.size ?? 22} viewBox="0 0 32 32" aria-hidden="true">
      <rect width="32" height="32" rx="8" fill="var(--accent)" />
      <circle cx="10" cy="11" r="3.2" fill="#fff" />
      <circle cx="10" cy="21" r="3.2" fill="#fff" opacity=".75" />
      <circle cx="22" cy="16" r="4" fill="#fff" />
      <path d="M13 11.5 18.5 15M13 20.5 18.5 17" stroke="#fff" strokeWidth="1.6" strokeLinecap="round" />
    </svg>
  ),
};

export const NODE_ICON: Record<string, (p: P) => ReactElement> = {
  checkpoint: Icon.Model,
  adapter: Icon.Adapter,
  dataset: Icon.Dataset,
  merge: Icon.Merge,
  moe: Icon.Moe,
  evaluate: Icon.Gauge,
  export: Icon.Package,
  expand: Icon.Grow,
  sequence_router: Icon.Router,
  evolve: Icon.Evolve,
};
