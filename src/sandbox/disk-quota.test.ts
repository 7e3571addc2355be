import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../log.js';
import { createDiskQuota, type DiskQuota, MAX_GROUP_ENTRIES, type MeasuredUse } from './disk-quota.js';
import type { FolderUse } from './folder-jobs.js';

const MIB = 1024 * 1024;

/** A disk and a group whose use the test sets; every measurement is counted. */
/** What the store keeps across restarts, shared by the hosts a test builds. */
type Remembered = Map<string, MeasuredUse | null>;

function setUp(
  options: {
    quotaMb?: number;
    minFreeMb?: number;
    firstMeasureDelayMs?: number;
    remembered?: Remembered;
  } = {},
) {
  const state = {
    groupBytes: 10 * MIB,
    entries: 100,
    diskUsed: 1000 * MIB,
    diskFree: 5000 * MIB,
    measureError: null as string | null,
    measureThrows: false,
  };
  const measured: string[] = [];
  const notices: string[] = [];
  const quota = createDiskQuota({
    dataDir: '/nowhere',
    quotaMbOf: () => options.quotaMb ?? 100,
    minFreeMb: options.minFreeMb ?? 1024,
    async measure(folder): Promise<FolderUse> {
      measured.push(folder);
      if (state.measureThrows) throw new Error('the engine went away');
      if (state.measureError) return { ok: false, error: state.measureError };
      return { ok: true, bytes: state.groupBytes, entries: state.entries };
    },
    diskUse: async () => ({ usedBytes: state.diskUsed, freeBytes: state.diskFree }),
    notifyOwner: (_key, text) => notices.push(text),
    now: Date.now,
    log: silentLogger(),
    tripwireMs: 10,
    firstMeasureDelayMs: options.firstMeasureDelayMs ?? 0,
    ...(options.remembered
      ? {
          remember: {
            load: (folder: string) => options.remembered?.get(folder) ?? null,
            save: (folder: string, use: MeasuredUse | null) => options.remembered?.set(folder, use),
          },
        }
      : {}),
  });
  /** The group writes: the disk fills by the same amount. */
  const write = (bytes: number) => {
    state.groupBytes += bytes;
    state.diskUsed += bytes;
    state.diskFree -= bytes;
  };
  return { quota, state, measured, notices, write };
}

/** Watches a group as a run does, recording each freeze (true) and thaw (false) and each stop. */
function watchHeld(quota: DiskQuota, folder: string) {
  const holds: boolean[] = [];
  const stops: string[] = [];
  quota.watch(folder, {
    onExceeded: (reason) => stops.push(reason),
    hold: async (isHeld) => {
      holds.push(isHeld);
    },
  });
  return { holds, stops };
}

let current: DiskQuota | null = null;
afterEach(() => current?.close());

const until = async (check: () => boolean, what: string) => {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

describe('disk quota', () => {
  it('measures a group once its run is under way, and stops the run when it turns out to be over', async () => {
    const { quota, state, measured, notices } = setUp();
    current = quota;
    state.groupBytes = 150 * MIB;
    expect(await quota.checkBeforeStart('sales')).toBeNull();
    expect(measured).toEqual([]);
    const stops: string[] = [];
    quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    await until(() => stops.length > 0, 'the stop');
    expect(measured).toEqual(['sales']);
    expect(stops[0]).toMatch(/use 150 MiB, over its disk quota of 100 MiB.*warren groups quota sales/);
    expect(notices).toHaveLength(1);
  });

  it('leaves the first seconds of a run (its cold start) unmeasured, unless the disk grows fast', async () => {
    const { quota, measured, write } = setUp({ firstMeasureDelayMs: 300 });
    current = quota;
    quota.watch('sales', { onExceeded: () => {} });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(measured).toEqual([]);
    write(80 * MIB);
    await until(() => measured.length === 1, 'a measurement of a fast writer');
    quota.watch('family', { onExceeded: () => {} });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(measured).toEqual(['sales']);
    await until(() => measured.includes('family'), 'the measurement after the first seconds');
  });

  it('refuses to start a group that is over, and starts it again once it is under', async () => {
    const { quota, state } = setUp();
    current = quota;
    state.groupBytes = 150 * MIB;
    const stops: string[] = [];
    quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    await until(() => stops.length > 0, 'the stop');
    expect(await quota.checkBeforeStart('sales')).toMatch(/over its disk quota/);
    state.groupBytes = 50 * MIB;
    expect(await quota.checkBeforeStart('sales')).toBeNull();
  });

  it('still refuses a group found over its quota after Warren restarts', async () => {
    const remembered: Remembered = new Map();
    const first = setUp({ remembered });
    current = first.quota;
    first.state.groupBytes = 150 * MIB;
    const stops: string[] = [];
    first.quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    await until(() => stops.length > 0, 'the stop');
    first.quota.close();
    const second = setUp({ remembered });
    current = second.quota;
    second.state.groupBytes = 150 * MIB;
    expect(await second.quota.checkBeforeStart('sales')).toMatch(/over its disk quota/);
    expect(second.measured).toEqual(['sales']);
  });

  it('measures during a run only when the disk grew enough for the group to have crossed its quota', async () => {
    const { quota, measured, write } = setUp();
    current = quota;
    expect(await quota.checkBeforeStart('sales')).toBeNull();
    const stops: string[] = [];
    quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    await until(() => measured.length === 1, 'the first measurement');
    write(30 * MIB);
    await new Promise((resolve) => setTimeout(resolve, 60));
    // 10 + 30 MiB cannot be over 100: no second measurement, no stop.
    expect(measured).toHaveLength(1);
    write(70 * MIB);
    await until(() => stops.length === 1, 'the stop');
    expect(measured.length).toBeGreaterThanOrEqual(2);
    expect(stops[0]).toMatch(/110 MiB, over its disk quota of 100 MiB/);
  });

  it('freezes a running group while the tripwire has it measured, and lets it go on only when under', async () => {
    const { quota, state, measured, write } = setUp();
    current = quota;
    await quota.checkBeforeStart('sales');
    const { holds, stops } = watchHeld(quota, 'sales');
    await until(() => holds.length === 2, 'the first measurement, held and let go');
    expect(measured).toHaveLength(1);
    state.diskUsed += 200 * MIB;
    await until(() => holds.length === 4, 'held and let go');
    expect(holds).toEqual([true, false, true, false]);
    write(200 * MIB);
    await until(() => stops.length === 1, 'the stop');
    // Over: it stays frozen until it is killed.
    expect(holds).toEqual([true, false, true, false, true]);
  });

  it('freezes a group for its first measurement too, so a fast writer cannot run on while it is measured', async () => {
    const { quota, write } = setUp({ firstMeasureDelayMs: 10_000 });
    current = quota;
    const { holds, stops } = watchHeld(quota, 'sales');
    await new Promise((resolve) => setTimeout(resolve, 50)); // the tripwire's first look
    write(150 * MIB);
    await until(() => stops.length === 1, 'the stop');
    expect(holds).toEqual([true]);
    expect(stops[0]).toMatch(/over its disk quota/);
  });

  it('does not stop a group whose neighbours filled the disk', async () => {
    const { quota, state, measured } = setUp();
    current = quota;
    await quota.checkBeforeStart('sales');
    const stops: string[] = [];
    quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    await until(() => measured.length === 1, 'the first measurement');
    state.diskUsed += 500 * MIB;
    await until(() => measured.length >= 2, 'a second measurement');
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(stops).toEqual([]);
  });

  it('stops every run and refuses starts when the disk is nearly full', async () => {
    const { quota, state } = setUp({ minFreeMb: 1024 });
    current = quota;
    await quota.checkBeforeStart('sales');
    const stops: string[] = [];
    quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    quota.watch('family', { onExceeded: (reason) => stops.push(reason) });
    state.diskFree = 500 * MIB;
    await until(() => stops.length === 2, 'both stops');
    expect(stops[0]).toMatch(/only 500 MiB free \(Warren keeps 1.0 GiB\)/);
    expect(await quota.checkBeforeStart('sales')).toMatch(/only 500 MiB free/);
  });

  it('fails closed when the folders cannot be measured, and counts entries too', async () => {
    const { quota, state } = setUp();
    current = quota;
    state.measureError = "cannot measure the group's folders: du: cannot read directory";
    await quota.checkBeforeStart('sales');
    const stops: string[] = [];
    quota.watch('sales', { onExceeded: (reason) => stops.push(reason) });
    await until(() => stops.length === 1, 'the stop');
    expect(stops[0]).toMatch(/cannot measure/);
    state.measureError = null;
    state.entries = MAX_GROUP_ENTRIES + 1;
    expect(await quota.checkBeforeStart('sales')).toMatch(/files and folders, over the limit/);
  });

  it('stops a frozen group whose measurement throws, rather than leaving it frozen', async () => {
    const { quota, state, measured } = setUp();
    current = quota;
    await quota.checkBeforeStart('sales');
    const { holds, stops } = watchHeld(quota, 'sales');
    await until(() => measured.length === 1, 'the first measurement');
    state.measureThrows = true;
    state.diskUsed += 200 * MIB;
    await until(() => stops.length === 1, 'the stop');
    expect(holds).toEqual([true, false, true]);
    expect(stops[0]).toBe("cannot measure the group's folders: the engine went away");
  });

  it('measures nothing for a group without a quota', async () => {
    const { quota, measured } = setUp({ quotaMb: 0 });
    current = quota;
    expect(await quota.checkBeforeStart('sales')).toBeNull();
    quota.watch('sales', { onExceeded: () => {} });
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(measured).toEqual([]);
  });
});
