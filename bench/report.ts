// The bench's numbers as tables: summaries (median, p90, max), the machine, the targets, and docs/BENCHMARKS.md.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

export interface Summary {
  n: number;
  median: number;
  p90: number;
  max: number;
}

/** Nearest-rank percentiles: with few samples they are samples, not interpolations. */
export function summarize(values: number[]): Summary | null {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number;
  return { n: sorted.length, median: rank(0.5), p90: rank(0.9), max: sorted.at(-1) as number };
}

/** A row of a latency table: milliseconds, summarized. Indented rows are parts of the row above. */
export interface LatencyRow {
  label: string;
  values: number[];
  isPart?: boolean;
}

/** A row of the one-shot table (throughput, memory, CPU). */
export interface ValueRow {
  label: string;
  value: string;
}

export interface TargetRow {
  target: string;
  figure: string;
  isMet: boolean | null;
}

export interface Section {
  title: string;
  /** Load average (1 min) when the section started: other work on the machine shows here. */
  load: number;
  latency: LatencyRow[];
  values: ValueRow[];
  /** A table of strings, its first row the header (e.g. one column per runtime). */
  grid?: string[][];
  notes: string[];
}

const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
export const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

export function renderSection(section: Section): string {
  const lines = [`### ${section.title}`, '', `Load average (1 min) at start: ${section.load.toFixed(2)}`, ''];
  if (section.latency.length > 0) {
    lines.push('| Interval (ms) | median | p90 | max | n |', '| --- | ---: | ---: | ---: | ---: |');
    for (const row of section.latency) {
      const summary = summarize(row.values);
      const label = row.isPart ? `&nbsp;&nbsp;↳ ${row.label}` : row.label;
      lines.push(
        summary
          ? `| ${label} | ${ms(summary.median)} | ${ms(summary.p90)} | ${ms(summary.max)} | ${summary.n} |`
          : `| ${label} | — | — | — | 0 |`,
      );
    }
    lines.push('');
  }
  if (section.values.length > 0) {
    lines.push('| Measure | Value |', '| --- | ---: |');
    for (const row of section.values) lines.push(`| ${row.label} | ${row.value} |`);
    lines.push('');
  }
  const [header, ...rows] = section.grid ?? [];
  if (header) {
    lines.push(`| ${header.join(' | ')} |`, `| --- |${' ---: |'.repeat(header.length - 1)}`);
    for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
    lines.push('');
  }
  for (const note of section.notes) lines.push(`- ${note}`);
  if (section.notes.length > 0) lines.push('');
  return lines.join('\n');
}

export function renderTargets(targets: TargetRow[]): string {
  const lines = ['| Target | Measured | |', '| --- | --- | --- |'];
  for (const row of targets) {
    const verdict = row.isMet === null ? 'not measured' : row.isMet ? '**met**' : '**missed**';
    lines.push(`| ${row.target} | ${row.figure} | ${verdict} |`);
  }
  return `${lines.join('\n')}\n`;
}

export function median(values: number[]): number {
  return summarize(values)?.median ?? Number.NaN;
}

function ask(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', timeout: 15_000 }).trim();
  } catch {
    return 'unknown';
  }
}

/** The machine, the engine and the image the numbers belong to. */
export function describeMachine(agentImage: string): string[] {
  const cpus = os.cpus();
  const osRelease = existsSync('/etc/os-release')
    ? (/^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'Linux')
    : os.type();
  const engine = ask('docker', [
    'info',
    '--format',
    '{{.ServerVersion}}, {{.Driver}}, cgroup v{{.CgroupVersion}}, runtime {{.DefaultRuntime}}',
  ]);
  const image = ask('docker', ['image', 'inspect', '--format', '{{.Id}} {{.Size}}', agentImage]);
  const [imageId, imageSize] = image.split(' ');
  return [
    `CPU: ${cpus.length} × ${cpus[0]?.model ?? 'unknown'}`,
    `Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `OS: ${osRelease}, kernel ${os.release()}`,
    `Node.js: ${process.version}`,
    `Docker engine: ${engine}`,
    `Agent image: ${agentImage} (${imageId?.slice(7, 19) ?? '?'}, ${imageSize ? mb(Number(imageSize)) : '?'})`,
  ];
}

const BEGIN = '<!-- bench:results:begin -->';
const END = '<!-- bench:results:end -->';

/** Puts the run's output between the markers of docs/BENCHMARKS.md (appending them if missing). */
export function writeResults(file: string, markdown: string): void {
  const block = `${BEGIN}\n${markdown.trimEnd()}\n${END}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next =
    start >= 0 && end > start
      ? `${current.slice(0, start)}${block}${current.slice(end + END.length)}`
      : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
