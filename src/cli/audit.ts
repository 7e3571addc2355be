// `warren audit`: the audit log (privileged actions and refusals), filtered, as a table or as JSON lines. Reading it
// changes nothing, so it is no owner operation and is not itself audited.
import { type Command, InvalidArgumentError, Option } from 'commander';
import { formatInstant } from '../queue/prompt.js';
import type { AuditRecord } from '../store/audit.js';
import { localTimeToInstant, parseInterval } from '../tasks/schedule.js';
import { type Cli, type CliHost, UsageError } from './program.js';

const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;
const LOCAL_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$/;
const ABSOLUTE_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;
const MAX_LIMIT = 100_000;

interface AuditOptions {
  group?: string;
  action?: string;
  kind?: string;
  denied?: boolean;
  since?: string;
  limit: number;
  json?: boolean;
}

/** The instant --since names: a duration back from now, a date or local time in timezone, or an ISO time. */
export function parseSince(text: string, now: number, timezone: string): number {
  const ms = parseInterval(text);
  if (ms !== null) return now - ms;
  let at: number | null = null;
  try {
    if (DATE_PATTERN.test(text)) at = localTimeToInstant(`${text}T00:00`, timezone);
    else if (LOCAL_TIME_PATTERN.test(text)) at = localTimeToInstant(text, timezone);
    else if (ABSOLUTE_TIME_PATTERN.test(text)) at = Date.parse(text);
  } catch {
    at = null; // croner refuses a date that does not exist, e.g. 2025-02-30
  }
  if (at === null || Number.isNaN(at)) {
    throw new UsageError(
      `--since takes a duration (30m, 2h, 7d) or a time (2025-06-01, 2025-06-01T09:00 in ${timezone}, or ISO with an offset), not '${text}'`,
    );
  }
  return at;
}

function parseLimit(text: string): number {
  const limit = /^\d{1,6}$/.test(text) ? Number(text) : 0;
  if (limit < 1 || limit > MAX_LIMIT)
    throw new InvalidArgumentError(`It must be a whole number from 1 to ${MAX_LIMIT}.`);
  return limit;
}

/** Agents and web clients put text in the log: no control character of theirs reaches the terminal. */
const printable = (text: string) => text.replace(/\p{Cc}/gu, '?');

function shortDetail(detail: Record<string, unknown>, max = 80): string {
  const text = Object.entries(detail)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const line = printable(text);
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function formatAuditTable(records: AuditRecord[], timezone: string): string {
  if (records.length === 0) return 'No audit entries match.';
  const rows = records.map((record) => [
    formatInstant(record.at, timezone),
    printable(record.groupFolder ?? '-'),
    printable(record.actor),
    printable(record.action),
    record.count > 1 ? `${record.decision} ×${record.count}` : record.decision,
    shortDetail(record.detail),
  ]);
  const header = ['TIME', 'GROUP', 'ACTOR', 'ACTION', 'DECISION', 'DETAIL'];
  const widths = header.map((title, index) =>
    Math.max(title.length, ...rows.map((row) => (row[index] as string).length)),
  );
  const line = (cells: string[]) =>
    `  ${cells.map((cell, index) => cell.padEnd(widths[index] as number)).join('  ')}`.trimEnd();
  const title = `Audit log (${records.length} shown, newest last, times in ${timezone}):`;
  return [title, line(header), ...rows.map(line)].join('\n');
}

/** One JSON object per line, with the full detail and the time as ISO 8601 beside the milliseconds. */
export function formatAuditJson(records: AuditRecord[]): string {
  return records
    .map((record) => JSON.stringify({ time: new Date(record.at).toISOString(), ...record }))
    .join('\n');
}

export function registerAudit(program: Command, cli: Cli, host: CliHost): void {
  program
    .command('audit')
    .description('the audit log: privileged actions and refusals, newest last')
    .option('--group <folder>', 'only entries of this group')
    .option('--action <name>', 'only this action, e.g. register-chat, mount, task-pause, egress')
    .option('--kind <name>', 'the same as --action (e.g. --kind egress: every network connection)')
    .option('--denied', 'only refusals')
    .option('--since <when>', 'only entries since a duration ago (30m, 2h, 7d) or a time (2025-06-01T09:00)')
    .addOption(new Option('--limit <n>', 'at most the newest n entries').argParser(parseLimit).default(50))
    .option('--json', 'JSON lines, one entry each, with the full detail')
    .action(
      cli.action((options: AuditOptions) =>
        host.withStore((store, config) => {
          const since =
            options.since === undefined ? undefined : parseSince(options.since, host.now(), config.timezone);
          const records = store.audit
            .find(
              {
                ...(options.group === undefined ? {} : { groupFolder: options.group }),
                ...((options.action ?? options.kind) === undefined
                  ? {}
                  : { action: options.action ?? options.kind }),
                ...(options.denied ? { decision: 'deny' as const } : {}),
                ...(since === undefined ? {} : { since }),
              },
              options.limit,
            )
            .reverse();
          if (!options.json) return { code: 0, text: formatAuditTable(records, config.timezone) };
          if (records.length > 0) cli.print(formatAuditJson(records)); // no match: no line at all
          return 0;
        }),
      ),
    );
}
