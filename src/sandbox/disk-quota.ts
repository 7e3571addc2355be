// Each group's disk quota (its folder, session state and IPC folder) and the host's floor of free space. Use is
// measured by a folder job (the host never walks an agent's tree); during a run a tripwire (the file system's used
// blocks, ten times a second) says when the group could have crossed its quota, and only then is it measured again.
import { statfsSync } from 'node:fs';
import type { Logger } from '../log.js';
import type { HostContext } from '../types.js';
import type { FolderUse } from './folder-jobs.js';

/** Files and folders one group may have: an agent must not exhaust the host file system's inodes either. */
export const MAX_GROUP_ENTRIES = 1_000_000;
/** How often the tripwire looks at the file system while agents run (one statfs: no cost worth counting). */
const DISK_TRIPWIRE_MS = 100;
/**
 * A measurement is a container start: in a run's first seconds it would compete with the agent's cold start for
 * the CPUs, so then a group is measured only if the disk grows fast (EARLY_GROWTH_BYTES) meanwhile.
 */
const FIRST_MEASURE_DELAY_MS = 5_000;
const EARLY_GROWTH_BYTES = 64 * 1024 * 1024;

interface DiskQuotaDeps extends Pick<HostContext, 'now' | 'notifyOwner'> {
  dataDir: string;
  /** The group's quota in MiB; 0 means none. */
  quotaMbOf(folder: string): number;
  /** Below this much free space (MiB) on the data directory's file system no agent runs. */
  minFreeMb: number;
  /** Never rejects. */
  measure(folder: string): Promise<FolderUse>;
  /** Used and free bytes of the file system holding a path (statfs unless a test says otherwise). */
  diskUse?(path: string): Promise<{ usedBytes: number; freeBytes: number }>;
  /** Keeps each group's last measurement across restarts (the store); null forgets it. */
  remember?: {
    load(folder: string): MeasuredUse | null;
    save(folder: string, use: MeasuredUse | null): void;
  };
  log: Logger;
  tripwireMs?: number;
  firstMeasureDelayMs?: number;
}

export type DiskQuota = ReturnType<typeof createDiskQuota>;
/** hold must not reject. */
type DiskWatcher = { onExceeded(reason: string): void; hold?(isHeld: boolean): Promise<void> };

/** diskUsedBefore: the file system's used bytes just before the measurement (growth since bounds the group's). */
export type MeasuredUse = { bytes: number; entries: number; diskUsedBefore: number };

const MIB = 1024 * 1024;
const formatMib = (bytes: number) =>
  bytes >= 1024 * MIB ? `${(bytes / 1024 / MIB).toFixed(1)} GiB` : `${Math.ceil(bytes / MIB)} MiB`;

/** statfs made directly: a few µs; through the thread pool it costs six times the CPU, ten times a second. */
async function statfsUse(path: string) {
  const stats = statfsSync(path);
  return { usedBytes: (stats.blocks - stats.bfree) * stats.bsize, freeBytes: stats.bavail * stats.bsize };
}

export function createDiskQuota(deps: DiskQuotaDeps) {
  const log = deps.log.child({ module: 'disk-quota' });
  const diskUse = deps.diskUse ?? statfsUse;
  const firstMeasureDelayMs = deps.firstMeasureDelayMs ?? FIRST_MEASURE_DELAY_MS;
  /** Each group's last measurement; null when it failed: the group's next start waits for a good one. */
  const measured = new Map<string, MeasuredUse | null>();
  const measuring = new Map<string, Promise<string | null>>();
  /** Each running group's watchers, when its run began and the disk's used bytes then (set by the first look). */
  const watched = new Map<string, { watchers: Set<DiskWatcher>; since: number; diskUsed: number | null }>();
  let timer: NodeJS.Timeout | null = null;
  let isTicking = false;
  let lastUsedBytes: number | null = null;

  function overReason(folder: string, use: { bytes: number; entries: number }): string | null {
    const quotaBytes = deps.quotaMbOf(folder) * MIB;
    if (quotaBytes > 0 && use.bytes > quotaBytes) {
      return (
        `the group's folders use ${formatMib(use.bytes)}, over its disk quota of ${formatMib(quotaBytes)}; ` +
        `delete files from its folder, or raise the quota: warren groups quota ${folder} SIZE_MB`
      );
    }
    if (use.entries > MAX_GROUP_ENTRIES) {
      return `the group's folders hold ${use.entries} files and folders, over the limit of ${MAX_GROUP_ENTRIES}`;
    }
    return null;
  }

  const floorReason = (freeBytes: number) =>
    freeBytes >= deps.minFreeMb * MIB
      ? null
      : `the disk holding Warren's data has only ${formatMib(freeBytes)} free (Warren keeps ${formatMib(deps.minFreeMb * MIB)}); free some space first`;

  function exceed(folder: string, reason: string): void {
    const group = watched.get(folder);
    if (group === undefined) return;
    watched.delete(folder);
    log.warn({ group: folder, reason }, 'stopping an agent: disk limit reached');
    const hour = Math.floor(deps.now() / 3600_000);
    deps.notifyOwner?.(`disk:${folder}:${hour}`, `⚠️ Group ${folder}: ${reason}.`);
    for (const watcher of group.watchers) watcher.onExceeded(reason);
    updateTimer();
  }

  /** Measures a group (one measurement at a time) and acts on it: resolves with why it is over, or null. */
  function measure(folder: string): Promise<string | null> {
    const running = measuring.get(folder);
    if (running) return running;
    const job = (async () => {
      const before = (await diskUse(deps.dataDir)).usedBytes;
      const use = await deps.measure(folder);
      const result = use.ok ? { bytes: use.bytes, entries: use.entries, diskUsedBefore: before } : null;
      measured.set(folder, result);
      deps.remember?.save(folder, result);
      // Fail closed: a folder that cannot be measured (unreadable parts, engine trouble) counts as over.
      const reason = use.ok ? overReason(folder, use) : use.error;
      if (reason) exceed(folder, reason);
      return reason;
    })()
      .catch((error: unknown) => {
        // Fail closed here too: a group frozen for this measurement must be stopped, not left frozen.
        const reason = `cannot measure the group's folders: ${(error as Error).message}`;
        exceed(folder, reason);
        return reason;
      })
      .finally(() => measuring.delete(folder));
    measuring.set(folder, job);
    return job;
  }

  /** The group's last measurement: this process's, or the one kept from before a restart. */
  function lastOf(folder: string): MeasuredUse | null {
    if (!measured.has(folder)) {
      const kept = deps.remember?.load(folder);
      if (kept) measured.set(folder, kept);
    }
    return measured.get(folder) ?? null;
  }

  /** Measures a running group frozen, so it cannot write on while it is measured; thawed if it is under. */
  async function measureHeld(folder: string): Promise<void> {
    const held = [...(watched.get(folder)?.watchers ?? [])];
    await Promise.all(held.map((watcher) => watcher.hold?.(true)));
    if ((await measure(folder)) === null) await Promise.all(held.map((watcher) => watcher.hold?.(false)));
  }

  /**
   * The most the group can use now: its last measurement plus all the disk's growth since, plus the last look's growth
   * again (acting on where an agent will be, not where it was, halves how far past its quota it gets).
   */
  function mayBeOver(folder: string, usedBytes: number, recentGrowth: number): boolean {
    const quotaBytes = deps.quotaMbOf(folder) * MIB;
    if (quotaBytes === 0) return false;
    const last = lastOf(folder);
    if (!last) return true;
    const bound = last.bytes + Math.max(0, usedBytes - last.diskUsedBefore) + Math.max(0, recentGrowth);
    return bound > quotaBytes || last.entries > MAX_GROUP_ENTRIES;
  }

  async function tick(): Promise<void> {
    if (isTicking) return;
    isTicking = true;
    try {
      const disk = await diskUse(deps.dataDir);
      const recentGrowth = lastUsedBytes === null ? 0 : disk.usedBytes - lastUsedBytes;
      lastUsedBytes = disk.usedBytes;
      const belowFloor = floorReason(disk.freeBytes);
      for (const [folder, group] of [...watched]) {
        if (belowFloor) {
          exceed(folder, belowFloor);
          continue;
        }
        if (measuring.has(folder) || !mayBeOver(folder, disk.usedBytes, recentGrowth)) continue;
        group.diskUsed ??= disk.usedBytes;
        const isStarting = deps.now() - group.since < firstMeasureDelayMs;
        if (isStarting && disk.usedBytes - group.diskUsed + recentGrowth < EARLY_GROWTH_BYTES) continue;
        // Frozen while measured, the first time too: an agent writes faster than a measurement takes (unfrozen, a
        // first measurement on gVisor let dd write 3.9 GiB past a 64 MiB quota before it was done).
        void measureHeld(folder);
      }
    } catch (error) {
      log.warn({ err: error }, 'disk tripwire failed');
    } finally {
      isTicking = false;
    }
  }

  function updateTimer(): void {
    if (watched.size > 0 && timer === null) {
      timer = setInterval(() => void tick(), deps.tripwireMs ?? DISK_TRIPWIRE_MS);
      timer.unref();
    } else if (watched.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
      lastUsedBytes = null;
    }
  }

  return {
    /** Why a run of this group must not start now, or null; measures first if it may be over. Never rejects. */
    async checkBeforeStart(folder: string): Promise<string | null> {
      try {
        const belowFloor = floorReason((await diskUse(deps.dataDir)).freeBytes);
        if (belowFloor) return belowFloor;
        const last = lastOf(folder);
        // Known to be over (or unmeasurable): only a fresh measurement lets it start. Otherwise the watch measures
        // it once the run is under way.
        if (measured.get(folder) !== null && !(last && overReason(folder, last))) return null;
        return await measure(folder);
      } catch (error) {
        return `cannot check the disk: ${(error as Error).message}`;
      }
    },

    /**
     * Calls onExceeded (once) when the group is over its quota or the disk nearly full. While the tripwire has it
     * measured, hold(true) freezes it (an agent writes faster than a measurement takes); hold(false) if under.
     */
    watch(folder: string, watcher: DiskWatcher): () => void {
      const group = watched.get(folder) ?? { watchers: new Set(), since: deps.now(), diskUsed: null };
      watched.set(folder, group);
      group.watchers.add(watcher);
      updateTimer();
      // A measurement that finished before the watch began may already have found the group over.
      const last = lastOf(folder);
      const reason = last ? overReason(folder, last) : null;
      if (reason) exceed(folder, reason);
      return () => {
        group.watchers.delete(watcher);
        if (group.watchers.size === 0 && watched.get(folder) === group) watched.delete(folder);
        updateTimer();
      };
    },

    close() {
      watched.clear();
      updateTimer();
    },
  };
}
