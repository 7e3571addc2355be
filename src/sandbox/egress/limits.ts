// Each group's egress caps: new connections a minute and bytes a day (UTC), counted in memory (a restart starts them
// again). A cap that refuses is reported once per refusal to onCapped; the host tells the chat once a day.
import type { EgressLimits } from './types.js';

export type Refusal = { status: number; reason: string };

export function createLimits(options: {
  now(): number;
  limits: EgressLimits;
  onCapped?(groupFolder: string, reason: string): void;
}) {
  const usage = new Map<string, { minute: number; requests: number; day: number; bytes: number }>();
  const byteCap = options.limits.megabytesPerDay * 1024 * 1024;
  const dayCapText = `the group used its ${options.limits.megabytesPerDay} MiB of network for today`;

  function usageOf(folder: string) {
    const now = options.now();
    const minute = Math.floor(now / 60_000);
    const day = Math.floor(now / 86_400_000);
    const entry = usage.get(folder) ?? { minute, requests: 0, day, bytes: 0 };
    if (entry.minute !== minute) Object.assign(entry, { minute, requests: 0 });
    if (entry.day !== day) Object.assign(entry, { day, bytes: 0 });
    usage.set(folder, entry);
    return entry;
  }

  const capped = (folder: string, reason: string): Refusal => {
    options.onCapped?.(folder, reason);
    return { status: 429, reason };
  };

  return {
    dayCapText,
    /** Counts one new connection or request; the refusal when a cap is already reached. */
    take(folder: string): Refusal | null {
      const entry = usageOf(folder);
      if (byteCap > 0 && entry.bytes >= byteCap) return capped(folder, dayCapText);
      if (++entry.requests > options.limits.requestsPerMinute) {
        return capped(folder, `more than ${options.limits.requestsPerMinute} connections in a minute`);
      }
      return null;
    },
    /** Counts bytes against the group's day; false once past the cap (the caller cuts the transfer, and says so). */
    charge(folder: string, bytes: number): boolean {
      const entry = usageOf(folder);
      entry.bytes += bytes;
      const isUnder = byteCap <= 0 || entry.bytes <= byteCap;
      if (!isUnder && entry.bytes - bytes <= byteCap) options.onCapped?.(folder, dayCapText);
      return isUnder;
    },
  };
}
