// Task schedules: parsing and validating cron / interval / once schedules, and their run times in a timezone.
import { Cron } from 'croner';
import { formatInstant } from '../queue/prompt.js';
import type { Schedule, ScheduleKind } from '../store/records.js';

export type ScheduleResult =
  | { ok: true; schedule: Schedule; firstRunAt: number }
  | { ok: false; error: string };

/** Shorter intervals would wake a model (and spend money) more often than any person needs. */
export const MIN_INTERVAL_MS = 60_000;
export const MAX_INTERVAL_MS = 366 * 86_400_000;

const CRON_HELP =
  "5 fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5' for 09:00 on weekdays";
const INTERVAL_PATTERN = /^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$/;
const LOCAL_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$/;
const ABSOLUTE_TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** The canonical name of an IANA timezone ('europe/berlin' → 'Europe/Berlin'), or null when it is unknown. */
export function canonicalTimezone(zone: string): string | null {
  if (zone.trim() === '') return null;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return null;
  }
}

/** The units of an interval, in the order INTERVAL_PATTERN captures them. */
const UNITS = Object.entries({ d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 });

/** Parses "90s", "30m", "2h", "1d", "1h30m" into milliseconds; null when it is not such a duration. */
export function parseInterval(text: string): number | null {
  const parts = INTERVAL_PATTERN.exec(text.trim().toLowerCase())?.slice(1);
  if (!parts || parts.every((part) => part === undefined)) return null;
  return parts.reduce((ms, part, index) => ms + Number(part ?? 0) * UNITS[index][1], 0);
}

function formatInterval(ms: number): string {
  let rest = ms;
  const parts = UNITS.map(([unit, size]) => {
    const count = Math.floor(rest / size);
    rest %= size;
    return count > 0 ? `${count}${unit}` : '';
  });
  return parts.join('') || '0s';
}

function cronOf(expression: string, timezone: string): Cron {
  // '5-part': no seconds field, so no schedule can wake a model every second.
  return new Cron(expression, { timezone, mode: '5-part' });
}

/** The instant of a local wall-clock time in a timezone (a time skipped by DST moves forward, as croner does). */
export function localTimeToInstant(text: string, timezone: string): number | null {
  const normalized = text.replace(' ', 'T');
  const withSeconds = normalized.length === 16 ? `${normalized}:00` : normalized;
  const next = new Cron(withSeconds, { timezone }).nextRun(new Date(0));
  return next ? next.getTime() : null;
}

/**
 * Validates a schedule as an agent or a person typed it, and computes its first run. Never throws: every
 * problem comes back as a sentence that says what to write instead.
 */
export function parseSchedule(
  input: { kind: ScheduleKind; value: string; timezone: string },
  now: number,
): ScheduleResult {
  const fail = (error: string) => ({ ok: false as const, error });
  const timezone = canonicalTimezone(input.timezone);
  if (!timezone)
    return fail(`unknown timezone '${input.timezone}': use an IANA name such as 'Europe/Berlin' or 'UTC'`);
  const value = input.value.trim();
  const ok = (stored: string, firstRunAt: number): ScheduleResult => {
    return { ok: true, schedule: { kind: input.kind, value: stored, timezone }, firstRunAt };
  };
  switch (input.kind) {
    case 'cron': {
      let next: Date | null;
      try {
        next = cronOf(value, timezone).nextRun(new Date(now));
      } catch (error) {
        const reason = (error as Error).message.replace(/^CronPattern: /, '');
        return fail(`invalid cron expression '${value}': ${reason}. Use ${CRON_HELP}`);
      }
      return next ? ok(value, next.getTime()) : fail(`the cron expression '${value}' never matches a date`);
    }
    case 'interval': {
      const ms = parseInterval(value);
      if (ms === null) return fail(`invalid interval '${value}': write it like '30m', '2h', '1d' or '1h30m'`);
      if (ms < MIN_INTERVAL_MS || ms > MAX_INTERVAL_MS) {
        return fail(`the interval must be between 1m and 366d (got ${formatInterval(ms)})`);
      }
      return ok(String(ms), now + ms);
    }
    case 'once': {
      let at: number | null = null;
      if (ABSOLUTE_TIME_PATTERN.test(value)) at = Date.parse(value);
      else if (LOCAL_TIME_PATTERN.test(value)) at = localTimeToInstant(value, timezone);
      if (at === null || Number.isNaN(at)) {
        return fail(
          `invalid time '${value}': write a local time in the task's timezone like '2025-06-02T09:00', or an ISO time with an offset`,
        );
      }
      if (at <= now) {
        return fail(
          `${value} (${formatInstant(at, timezone)}) has already passed: it is now ${formatInstant(now, timezone)} in ${timezone}`,
        );
      }
      return ok(String(at), at);
    }
  }
}

/**
 * The next slot after scheduledFor, from the schedule (not from when a run ended), skipping slots already past:
 * after downtime, missed slots collapse into the one run just claimed. null for a once-task.
 */
export function nextRunAfter(schedule: Schedule, scheduledFor: number, now: number): number | null {
  const after = Math.max(scheduledFor, now);
  switch (schedule.kind) {
    case 'once':
      return null;
    case 'interval': {
      const every = Number(schedule.value);
      // The k-th slot after scheduledFor, the first one strictly after now: the phase never drifts.
      return scheduledFor + (Math.floor((after - scheduledFor) / every) + 1) * every;
    }
    case 'cron':
      return cronOf(schedule.value, schedule.timezone).nextRun(new Date(after))?.getTime() ?? null;
  }
}

/** A schedule for a person: "cron '0 9 * * 1-5' (Europe/Berlin)", "every 30m", "once at Mon 2025-06-02 09:00 (UTC)". */
export function describeSchedule(schedule: Schedule): string {
  switch (schedule.kind) {
    case 'cron':
      return `cron '${schedule.value}' (${schedule.timezone})`;
    case 'interval':
      return `every ${formatInterval(Number(schedule.value))}`;
    case 'once':
      return `once at ${formatInstant(Number(schedule.value), schedule.timezone)} (${schedule.timezone})`;
  }
}
