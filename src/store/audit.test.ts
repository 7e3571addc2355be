import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { silentLogger } from '../log.js';
import { migrations } from './migrations.js';
import { startRetention } from './retention.js';
import { type AuditEntry, openStore, type Store } from './store.js';

let store: Store | null = null;
afterEach(() => store?.close());

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const refusal = (overrides: Partial<AuditEntry> = {}): AuditEntry => ({
  groupFolder: 'team',
  actor: 'agent:team',
  action: 'ipc-flood',
  decision: 'deny',
  detail: { reason: 'too many files' },
  ...overrides,
});

describe('audit log', () => {
  it('ten thousand refusals of one kind in one minute are one row that counts them, with the first and last as samples', () => {
    store = openStore(':memory:');
    const start = 1_000 * MINUTE;
    // Many actor ids and reasons: a flood must fold even when the attacker varies them.
    for (let index = 0; index < 10_000; index++) {
      store.audit.record(
        refusal({
          groupFolder: null,
          actor: `local:10.0.${index % 256}.${index % 7}`,
          action: 'local-chat-request',
          detail: { reason: `refusal ${index}` },
        }),
        start + index * 5,
      );
    }
    const rows = store.audit.recent(100_000);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual({
      groupFolder: null,
      actor: 'local:10.0.0.0',
      action: 'local-chat-request',
      decision: 'deny',
      detail: { reason: 'refusal 0' },
      lastDetail: { reason: 'refusal 9999' },
      count: 10_000,
      at: start,
      lastAt: start + 9_999 * 5,
    });
  });

  it('refusals from another group, of another action or by another kind of actor are rows of their own', () => {
    store = openStore(':memory:');
    const kinds = [
      refusal(),
      refusal({ groupFolder: 'other', actor: 'agent:other' }),
      refusal({ action: 'schedule-task' }),
      refusal({ actor: 'telegram:12345' }),
    ];
    for (const repeat of [0, 1, 2]) for (const kind of kinds) store.audit.record(kind, 7 * MINUTE + repeat);
    const rows = store.audit.recent(100);
    expect(rows).toHaveLength(4);
    expect(rows.map((row) => row.count)).toEqual([3, 3, 3, 3]);
    expect(rows.map((row) => [row.groupFolder, row.actor, row.action]).reverse()).toEqual(
      kinds.map((kind) => [kind.groupFolder, kind.actor, kind.action]),
    );
  });

  it('the next minute starts a new row', () => {
    store = openStore(':memory:');
    for (const at of [MINUTE - 1, MINUTE, MINUTE + 1, 2 * MINUTE - 1]) store.audit.record(refusal(), at);
    expect(store.audit.recent(10).reverse()).toMatchObject([
      { count: 1, at: MINUTE - 1, lastAt: MINUTE - 1 },
      { count: 3, at: MINUTE, lastAt: 2 * MINUTE - 1 },
    ]);
  });

  it('allowed actions are never folded: each is a row of its own', () => {
    store = openStore(':memory:');
    const allowed = refusal({ action: 'register', decision: 'allow', detail: { folder: 'x' } });
    for (const at of [5, 6, 7]) store.audit.record(allowed, at);
    expect(store.audit.recent(10).reverse()).toEqual(
      [5, 6, 7].map((at) => ({ ...allowed, at, count: 1, lastAt: at, lastDetail: null })),
    );
  });

  it('a flood over many minutes stays bounded: one row a minute for each kind of refusal', () => {
    store = openStore(':memory:');
    const kinds = [refusal(), refusal({ action: 'ipc-folder' }), refusal({ groupFolder: 'other' })];
    // 30 refusals a second of each kind for ten minutes.
    for (let at = 0; at < 10 * MINUTE; at += 33) for (const kind of kinds) store.audit.record(kind, at);
    const rows = store.audit.recent(100_000);
    expect(rows).toHaveLength(10 * kinds.length);
    expect(rows.reduce((total, row) => total + row.count, 0)).toBe(
      kinds.length * Math.ceil((10 * MINUTE) / 33),
    );
  });

  it('rows written before aggregation read as single entries', () => {
    const path = join(tempDir(), 'warren.db');
    const aggregation = migrations.findIndex((migration) => migration.includes('audit_repeats'));
    const old = new Database(path);
    for (const migration of migrations.slice(0, aggregation)) old.exec(migration);
    old.pragma(`user_version = ${aggregation}`);
    old
      .prepare(
        `INSERT INTO audit (at, group_folder, actor, action, decision, detail) VALUES (5, 'team', 'cli', 'x', 'deny', '{}')`,
      )
      .run();
    old.close();
    store = openStore(path);
    store.audit.record(refusal({ actor: 'cli', action: 'x', detail: {} }), 6);
    expect(store.audit.recent(10).reverse()).toMatchObject([
      { at: 5, count: 1, lastAt: 5 },
      { at: 6, count: 1, lastAt: 6 },
    ]);
  });
});

describe('audit retention', () => {
  it('keeps the audit log forever at 0 days; otherwise forgets rows last written before the cutoff, and audits it', () => {
    store = openStore(':memory:');
    const now = 400 * DAY + MINUTE / 2;
    const before = now - 365 * DAY; // 35 days and half a minute
    store.audit.record(refusal({ action: 'register', decision: 'allow' }), 10 * DAY); // old: goes
    store.audit.record(refusal(), 20 * DAY); // old refusals: go
    store.audit.record(refusal(), 20 * DAY + 1_000);
    // First refused before the cutoff, last after it, within one minute: the row is still counting, it stays.
    store.audit.record(refusal({ action: 'ipc-folder' }), before - 10_000);
    store.audit.record(refusal({ action: 'ipc-folder' }), before + 10_000);
    store.audit.record(refusal({ action: 'schedule-task' }), 399 * DAY); // fresh: stays
    const log = silentLogger();

    startRetention({ store, log, now: () => now, days: 30, auditDays: 0 })();
    expect(store.audit.recent(100)).toHaveLength(4);

    startRetention({ store, log, now: () => now, days: 0, auditDays: 365 })();
    expect(store.audit.recent(100).reverse()).toMatchObject([
      { action: 'ipc-folder', count: 2, at: before - 10_000, lastAt: before + 10_000 },
      { action: 'schedule-task', count: 1 },
      {
        groupFolder: null,
        actor: 'host',
        action: 'audit-prune',
        decision: 'allow',
        detail: { rows: 2, before },
        at: now,
      },
    ]);

    // Nothing more to forget: no second prune entry.
    startRetention({ store, log, now: () => now, days: 0, auditDays: 365 })();
    expect(store.audit.recent(100)).toHaveLength(3);
  });
});

describe('audit log search', () => {
  const allowed = (overrides: Partial<AuditEntry> = {}): AuditEntry => ({
    groupFolder: 'team',
    actor: 'cli',
    action: 'mount',
    decision: 'allow',
    detail: { path: '/srv/shared' },
    ...overrides,
  });

  it('finds the newest rows matching every filter, newest first, and no more than the limit', () => {
    store = openStore(':memory:');
    store.audit.record(allowed(), 1 * MINUTE);
    store.audit.record(allowed({ groupFolder: 'family' }), 2 * MINUTE);
    store.audit.record(refusal({ action: 'mount' }), 3 * MINUTE);
    store.audit.record(allowed({ action: 'set-quota' }), 4 * MINUTE);
    store.audit.record(allowed(), 5 * MINUTE);

    const brief = (rows: ReturnType<Store['audit']['find']>) =>
      rows.map((row) => [row.at / MINUTE, row.action]);
    expect(brief(store.audit.find({}, 100))).toEqual([
      [5, 'mount'],
      [4, 'set-quota'],
      [3, 'mount'],
      [2, 'mount'],
      [1, 'mount'],
    ]);
    expect(brief(store.audit.find({ groupFolder: 'team', action: 'mount' }, 100))).toEqual([
      [5, 'mount'],
      [3, 'mount'],
      [1, 'mount'],
    ]);
    expect(brief(store.audit.find({ decision: 'deny' }, 100))).toEqual([[3, 'mount']]);
    expect(brief(store.audit.find({ since: 4 * MINUTE }, 100))).toEqual([
      [5, 'mount'],
      [4, 'set-quota'],
    ]);
    expect(brief(store.audit.find({}, 2))).toEqual([
      [5, 'mount'],
      [4, 'set-quota'],
    ]);
  });

  it('since keeps a row of folded refusals that began before it but went on after it', () => {
    store = openStore(':memory:');
    const minuteStart = 100 * MINUTE;
    store.audit.record(refusal(), minuteStart + 1_000);
    store.audit.record(refusal(), minuteStart + 50_000);
    store.audit.record(refusal({ action: 'other' }), minuteStart + 2_000); // over before since
    expect(store.audit.find({ since: minuteStart + 30_000 }, 10)).toMatchObject([
      { action: 'ipc-flood', count: 2, at: minuteStart + 1_000, lastAt: minuteStart + 50_000 },
    ]);
  });
});
