/**
 * Benchmark figures, the one table each runner prints (Markdown, README-ready) and the JSON it
 * writes to bench/results. Environment-agnostic (used in Node and in the browser bundle).
 */
import { fmtBytes, fmtMs, fmtRatio, type Summary } from './stats.js';

/** What a figure measures. */
export type Unit = 'ms' | 'bytes' | 'count';

/** One measured figure (a row of the table). */
export interface Figure {
  /** Workload number of the benchmark plan (1–8). */
  workload: number;
  /** What was measured, e.g. "update 1 field, 10k rows → promise resolved". */
  name: string;
  unit: Unit;
  /** Median (timings), or the value itself (bytes, counts, single timings). */
  value: number;
  /** 99th percentile, for repeated timings. */
  p99?: number | undefined;
  /** Number of samples behind `value`/`p99`. */
  n?: number | undefined;
  /** A ratio against a floor or a baseline, and what it divides. */
  ratio?: number | undefined;
  ratioOf?: string | undefined;
  /** The target of the ratio (or value), e.g. "≤ 1.5". */
  target?: string | undefined;
  /** Whether the target was met (undefined when there is none). */
  met?: boolean | undefined;
  /** Method notes, or why a figure is missing ("not measured: …"). */
  note?: string | undefined;
}

/** A whole run: where it ran and what it found. */
export interface RunResult {
  /** `node` or `browser`. */
  name: string;
  startedAt: string;
  durationMs: number;
  machine: Record<string, string | number>;
  config: Record<string, string | number | boolean>;
  figures: Figure[];
}

/** A timing figure from a summary (median as the value). */
export function timing(workload: number, name: string, s: Summary, extra: Partial<Figure> = {}): Figure {
  return { workload, name, unit: 'ms', value: s.p50, p99: s.p99, n: s.n, ...extra };
}

/** A figure that could not be measured, with the reason. */
export function notMeasured(workload: number, name: string, reason: string): Figure {
  return { workload, name, unit: 'ms', value: Number.NaN, note: `not measured: ${reason}` };
}

/** Whether `value` is at most `max` (a helper for `met`). */
export function atMost(value: number, max: number): boolean | undefined {
  return Number.isFinite(value) ? value <= max : undefined;
}

/** A figure's value (or p99) in its unit. */
export function fmtFigureValue(f: Figure, v: number | undefined): string {
  if (v === undefined) return '';
  if (!Number.isFinite(v)) return '—';
  if (f.unit === 'bytes') return fmtBytes(v);
  if (f.unit === 'count') return String(v);
  return fmtMs(v);
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/** The figures as one Markdown table. */
export function markdownTable(figures: readonly Figure[]): string {
  const lines = [
    '| # | figure | p50 / value | p99 | n | ratio | target | note |',
    '| -: | --- | -: | -: | -: | -: | --- | --- |',
  ];
  for (const f of figures) {
    const ratio = f.ratio === undefined ? '' : `${fmtRatio(f.ratio)}${f.ratioOf ? ` (${f.ratioOf})` : ''}`;
    const target =
      f.target === undefined ? '' : `${f.target}${f.met === undefined ? '' : f.met ? ' ✅' : ' ❌ missed'}`;
    lines.push(
      `| ${f.workload} | ${cell(f.name)} | ${fmtFigureValue(f, f.value)} | ${fmtFigureValue(f, f.p99)} | ${f.n ?? ''} | ${cell(ratio)} | ${cell(target)} | ${cell(f.note ?? '')} |`,
    );
  }
  return lines.join('\n');
}

/** The machine as one Markdown line. */
export function machineLine(machine: Record<string, string | number>): string {
  return Object.entries(machine)
    .map(([k, v]) => `${k}: ${v}`)
    .join(' · ');
}

/** The full printout of a run: heading, machine, table. */
export function formatRun(run: RunResult): string {
  return [
    `## userdb benchmarks (${run.name}), ${run.startedAt}`,
    '',
    machineLine(run.machine),
    '',
    markdownTable(run.figures),
    '',
  ].join('\n');
}
