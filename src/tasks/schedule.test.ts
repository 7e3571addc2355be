import { describe, expect, it } from 'vitest';
import type { Schedule } from '../store/records.js';
import {
  canonicalTimezone,
  describeSchedule,
  nextRunAfter,
  parseInterval,
  parseSchedule,
} from './schedule.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function schedule(kind: Schedule['kind'], value: string, timezone: string, now: number): Schedule {
  const parsed = parseSchedule({ kind, value, timezone }, now);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.schedule;
}

/** The first n runs from now, each computed from the previous scheduled time (as the scheduler does). */
function runs(
  kind: Schedule['kind'],
  value: string,
  timezone: string,
  from: string,
  count: number,
): string[] {
  const now = at(from);
  const parsed = parseSchedule({ kind, value, timezone }, now);
  if (!parsed.ok) throw new Error(parsed.error);
  const result: string[] = [];
  let slot: number | null = parsed.firstRunAt;
  while (slot !== null && result.length < count) {
    result.push(iso(slot) as string);
    slot = nextRunAfter(parsed.schedule, slot, slot);
  }
  return result;
}

describe('cron schedules', () => {
  it('run at the wall-clock time of their own timezone', () => {
    const from = '2025-01-15T00:00:00Z';
    expect(runs('cron', '0 9 * * *', 'UTC', from, 1)).toEqual(['2025-01-15T09:00:00.000Z']);
    expect(runs('cron', '0 9 * * *', 'America/New_York', from, 1)).toEqual(['2025-01-15T14:00:00.000Z']);
    expect(runs('cron', '0 9 * * *', 'Asia/Tokyo', from, 1)).toEqual(['2025-01-16T00:00:00.000Z']);
    expect(runs('cron', '0 9 * * *', 'Asia/Kolkata', from, 1)).toEqual(['2025-01-15T03:30:00.000Z']);
    expect(runs('cron', '30 18 * * 5', 'Australia/Sydney', from, 1)).toEqual(['2025-01-17T07:30:00.000Z']);
  });

  it('keep 09:00 Europe/Berlin on weekdays across the spring DST change', () => {
    // Clocks go forward on Sunday 2025-03-30: 09:00 is 08:00Z before, 07:00Z after.
    expect(runs('cron', '0 9 * * 1-5', 'Europe/Berlin', '2025-03-27T00:00:00Z', 4)).toEqual([
      '2025-03-27T08:00:00.000Z',
      '2025-03-28T08:00:00.000Z',
      '2025-03-31T07:00:00.000Z',
      '2025-04-01T07:00:00.000Z',
    ]);
  });

  it('keep 09:00 Europe/Berlin on weekdays across the autumn DST change', () => {
    // Clocks go back on Sunday 2025-10-26: 09:00 is 07:00Z before, 08:00Z after.
    expect(runs('cron', '0 9 * * 1-5', 'Europe/Berlin', '2025-10-23T00:00:00Z', 4)).toEqual([
      '2025-10-23T07:00:00.000Z',
      '2025-10-24T07:00:00.000Z',
      '2025-10-27T08:00:00.000Z',
      '2025-10-28T08:00:00.000Z',
    ]);
  });

  it('run once, not twice and not never, on the days a local time is skipped or repeated', () => {
    // 02:30 does not exist on 2025-03-30 in Berlin and happens twice on 2025-10-26.
    expect(runs('cron', '30 2 * * *', 'Europe/Berlin', '2025-03-29T12:00:00Z', 2)).toEqual([
      '2025-03-30T01:00:00.000Z',
      '2025-03-31T00:30:00.000Z',
    ]);
    expect(runs('cron', '30 2 * * *', 'Europe/Berlin', '2025-10-25T12:00:00Z', 2)).toEqual([
      '2025-10-26T00:30:00.000Z',
      '2025-10-27T01:30:00.000Z',
    ]);
  });

  it('collapse missed slots: after downtime the next run is the first slot after now', () => {
    const weekdays = schedule('cron', '0 9 * * 1-5', 'Europe/Berlin', at('2025-06-01T00:00:00Z'));
    // The Monday 09:00 slot ran on Wednesday at noon (the host was down): next is Thursday, not Tuesday.
    expect(iso(nextRunAfter(weekdays, at('2025-06-02T07:00:00Z'), at('2025-06-04T10:00:00Z')))).toBe(
      '2025-06-05T07:00:00.000Z',
    );
  });

  it('refuse bad expressions and timezones with a sentence that says what to write', () => {
    const now = at('2025-01-01T00:00:00Z');
    const bad = (kind: Schedule['kind'], value: string, timezone = 'UTC') => {
      const parsed = parseSchedule({ kind, value, timezone }, now);
      return parsed.ok ? 'accepted' : parsed.error;
    };
    expect(bad('cron', '61 9 * * *')).toMatch(/invalid cron expression '61 9 \* \* \*'.*minute.*5 fields/);
    expect(bad('cron', '0 0 9 * * *')).toMatch(/5 fields/); // no seconds field: nothing may fire every second
    expect(bad('cron', 'every morning')).toMatch(/invalid cron expression/);
    expect(bad('cron', '0 0 30 2 *')).toMatch(/never matches/);
    expect(bad('cron', '0 9 * * *', 'Mars/Olympus')).toMatch(/unknown timezone 'Mars\/Olympus'.*IANA/);
    expect(bad('cron', '0 9 * * *', '+02:00')).toMatch(/unknown timezone/);
  });

  it('accept timezones in any case and store the canonical name', () => {
    expect(canonicalTimezone('europe/berlin')).toBe('Europe/Berlin');
    expect(canonicalTimezone('Nowhere/Special')).toBeNull();
    expect(schedule('cron', '0 9 * * *', 'europe/berlin', 0).timezone).toBe('Europe/Berlin');
  });
});

describe('interval schedules', () => {
  it('parse durations people write', () => {
    expect(parseInterval('30m')).toBe(1_800_000);
    expect(parseInterval('1h30m')).toBe(5_400_000);
    expect(parseInterval('2d')).toBe(172_800_000);
    expect(parseInterval('90s')).toBe(90_000);
    expect(parseInterval('soon')).toBeNull();
    expect(parseInterval('')).toBeNull();
  });

  it('refuse intervals under a minute, so no task wakes the model every few seconds', () => {
    const parsed = parseSchedule({ kind: 'interval', value: '30s', timezone: 'UTC' }, 0);
    expect(parsed.ok ? 'accepted' : parsed.error).toMatch(/between 1m and 366d/);
  });

  it('do not drift: the next run follows the scheduled time, not when the last run ended', () => {
    const every30 = schedule('interval', '30m', 'UTC', at('2025-01-01T09:30:00Z'));
    const slot = at('2025-01-01T10:00:00Z');
    // The 10:00 run took 17 minutes: the next is still 10:30.
    expect(iso(nextRunAfter(every30, slot, at('2025-01-01T10:17:00Z')))).toBe('2025-01-01T10:30:00.000Z');
    // A run that outlasts the interval (10:00 → 10:41) does not shift the phase either.
    expect(iso(nextRunAfter(every30, slot, at('2025-01-01T10:41:00Z')))).toBe('2025-01-01T11:00:00.000Z');
    // A hundred runs later the phase is unchanged.
    let next = slot;
    for (let index = 0; index < 100; index++) next = nextRunAfter(every30, next, next + 7 * 60_000) as number;
    expect(iso(next)).toBe('2025-01-03T12:00:00.000Z');
  });

  it('first run one interval after creation', () => {
    const parsed = parseSchedule(
      { kind: 'interval', value: '2h', timezone: 'UTC' },
      at('2025-01-01T08:15:00Z'),
    );
    expect(parsed.ok && iso(parsed.firstRunAt)).toBe('2025-01-01T10:15:00.000Z');
  });
});

describe('once schedules', () => {
  const now = at('2025-06-01T10:00:00Z');

  it('read a local time in the task timezone, or an absolute time with an offset', () => {
    const local = parseSchedule({ kind: 'once', value: '2025-06-02T09:00', timezone: 'Europe/Berlin' }, now);
    expect(local.ok && iso(local.firstRunAt)).toBe('2025-06-02T07:00:00.000Z');
    const absolute = parseSchedule(
      { kind: 'once', value: '2025-06-02T09:00:00Z', timezone: 'Europe/Berlin' },
      now,
    );
    expect(absolute.ok && iso(absolute.firstRunAt)).toBe('2025-06-02T09:00:00.000Z');
    const offset = parseSchedule({ kind: 'once', value: '2025-06-02T09:00+05:30', timezone: 'UTC' }, now);
    expect(offset.ok && iso(offset.firstRunAt)).toBe('2025-06-02T03:30:00.000Z');
  });

  it('refuse a time in the past, saying what time it is now', () => {
    const parsed = parseSchedule({ kind: 'once', value: '2025-06-01T11:59', timezone: 'Europe/Berlin' }, now);
    expect(parsed.ok ? 'accepted' : parsed.error).toMatch(
      /already passed: it is now Sun 2025-06-01 12:00 in Europe\/Berlin/,
    );
    expect(parseSchedule({ kind: 'once', value: 'tomorrow', timezone: 'UTC' }, now).ok).toBe(false);
  });

  it('have no next run', () => {
    const once = schedule('once', '2025-06-02T09:00', 'UTC', now);
    expect(nextRunAfter(once, Number(once.value), Number(once.value))).toBeNull();
    expect(describeSchedule(once)).toBe('once at Mon 2025-06-02 09:00 (UTC)');
  });
});
