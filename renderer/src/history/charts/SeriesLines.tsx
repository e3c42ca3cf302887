/** Lines over a step axis (layer, generation): router entropy, routing accuracy, diversity, fitness. */
import type { ReactElement } from 'react';
import { CartesianGrid, Legend, Line, LineChart, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { axisProps, SERIES, tooltipProps, useChartTheme } from './chart-theme';

export interface LinePoint {
  step: number;
  [series: string]: number | null;
}

export function SeriesLines({ points, series, xLabel, height = 220, reference, domain, testId }: { points: LinePoint[]; series: string[]; xLabel: string; height?: number; reference?: { y: number; label: string }; domain?: [number | 'auto', number | 'auto']; testId?: string }): ReactElement {
  const t = useChartTheme();
  return (
    <div className="chart" data-testid={testId}>
      <ResponsiveContainer width="100%" height={height}>
        <LineChart data={points} margin={{ top: 8, right: 12, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" stroke={t.grid} />
          <XAxis dataKey="step" {...axisProps(t)} tickFormatter={(v: number) => `${xLabel} ${v}`} />
          <YAxis {...axisProps(t)} width={52} domain={domain ?? ['auto', 'auto']} />
          <Tooltip {...tooltipProps(t)} labelFormatter={(v) => `${xLabel} ${String(v)}`} formatter={(v) => (typeof v === 'number' ? v.toFixed(4) : String(v))} />
          {series.length > 1 && <Legend wrapperStyle={{ fontSize: 12 }} iconType="circle" iconSize={8} />}
          {reference && <ReferenceLine y={reference.y} stroke={t.axis} strokeDasharray="4 4" label={{ value: reference.label, fill: t.text, fontSize: 11, position: 'insideTopRight' }} />}
          {/* Straight segments: the steps are discrete (layers, generations); a smoothed curve would invent values between them. */}
          {series.map((s, i) => <Line key={s} type="linear" dataKey={s} stroke={SERIES[i % SERIES.length]} strokeWidth={2} dot={{ r: 3 }} isAnimationActive={false} connectNulls />)}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
