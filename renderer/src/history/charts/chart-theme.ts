/** Colours for recharts (SVG attributes cannot read CSS variables reliably, so they are resolved here). */
import { useStore } from '../../state/store';
import { uiStore } from '../../state/ui';

export const SERIES = ['#7c6cf2', '#2bb5a3', '#f29b38', '#e5609a', '#58a6ff', '#a3c94a', '#c084fc', '#f87171', '#22d3ee', '#facc15'];

export interface ChartTheme {
  grid: string;
  axis: string;
  text: string;
  tooltipBg: string;
  tooltipBorder: string;
}

const DARK: ChartTheme = { grid: '#2a2d38', axis: '#5b6072', text: '#a4a9b8', tooltipBg: '#1b1d25', tooltipBorder: '#343847' };
const LIGHT: ChartTheme = { grid: '#e6e7ee', axis: '#b4b8c6', text: '#5a6072', tooltipBg: '#ffffff', tooltipBorder: '#d9dbe4' };

export function useChartTheme(): ChartTheme {
  return useStore(uiStore, (s) => s.theme) === 'dark' ? DARK : LIGHT;
}

export function tooltipProps(t: ChartTheme) {
  return {
    contentStyle: { background: t.tooltipBg, border: `1px solid ${t.tooltipBorder}`, borderRadius: 8, fontSize: 12, color: t.text },
    labelStyle: { color: t.text, fontWeight: 600 },
    itemStyle: { padding: 0 },
    cursor: { fill: t.grid, opacity: 0.4 },
  };
}

export function axisProps(t: ChartTheme) {
  return { stroke: t.axis, tick: { fill: t.text, fontSize: 11 }, tickLine: false };
}
