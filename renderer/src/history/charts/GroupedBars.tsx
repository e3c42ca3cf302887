/** A grouped bar chart: one group per category (task), one bar per series (eval node or run). */
import type { ReactElement } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { axisProps, SERIES, tooltipProps, useChartTheme } from './chart-theme';

export interface BarRow {
  category: string;
  [series: string]: string | number | null;
}

export function GroupedBars({ rows, series, height = 240, domain, testId }: { rows: BarRow[]; series: string[]; height?: number; domain?: [number, number]; testId?: string }): ReactElement {
  const t = useChartTheme();
  return (
    <div className="chart" data-testid={testId}>
      <ResponsiveContainer width="100%" height={height}>
        <BarChart data={rows} margin={{ top: 8, right: 8, bottom: 4, left: 0 }} barCategoryGap="22%">
          <CartesianGrid strokeDasharray="3 3" stroke={t.grid} vertical={false} />
          <XAxis dataKey="category" {...axisProps(t)} interval={0} height={rows.length > 6 ? 48 : 28} angle={rows.length > 6 ? -20 : 0} textAnchor={rows.length > 6 ? 'end' : 'middle'} />
          <YAxis {...axisProps(t)} domain={domain ?? [0, 'auto']} width={52} />
          <Tooltip {...tooltipProps(t)} formatter={(v) => (typeof v === 'number' ? v.toFixed(3) : String(v))} />
          {series.length > 1 && <Legend wrapperStyle={{ fontSize: 12, color: t.text }} iconType="circle" iconSize={8} />}
          {series.map((s, i) => <Bar key={s} dataKey={s} fill={SERIES[i % SERIES.length]} radius={[3, 3, 0, 0]} isAnimationActive={false} maxBarSize={42} />)}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
