import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup, tempDir } from '../../test/harness.js';
import { rowsMentioning, seedGroupData } from '../../test/helpers/group-data.js';
import { openStore, type Store } from './store.js';

let file: string;
let store: Store;

beforeEach(() => {
  const dataDir = tempDir();
  file = join(dataDir, 'warren.db');
  store = openStore(file);
  for (const folder of ['acme', 'globex']) {
    registerTestGroup(store, dataDir, folder);
    seedGroupData(file, folder);
  }
});
afterEach(() => store.close());

describe("one group's data", () => {
  it('is read out a page at a time, every row once, in order', () => {
    const db = new Database(file);
    const insert = db.prepare(`INSERT INTO usage (at, day, group_folder, input_tokens, output_tokens,
      cache_read_tokens, cache_write_tokens) VALUES (?, '2025-06-16', ?, 1, 1, 0, 0)`);
    // More than two pages, with another group's rows between them.
    for (let index = 0; index < 1_200; index++) {
      insert.run(index, 'acme');
      insert.run(index, 'globex');
    }
    db.close();
    const usage = [...(store.groupData.export('acme') ?? [])].filter((record) => record.type === 'usage');
    expect(usage).toHaveLength(1_201);
    expect(usage.every((record) => record.groupFolder === 'acme')).toBe(true);
    const ids = usage.map((record) => record.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('is purged from every table but the audit in one go, and another group keeps all of its own', () => {
    const before = rowsMentioning(file, 'globex');
    expect(rowsMentioning(file, 'acme')).toEqual(before); // the same rows to start with, so the check can fail
    const purged = store.groupData.purge('acme');
    expect(purged?.counts).toMatchObject({
      messages: 2,
      outbox: 2,
      sentParts: 1,
      tasks: 1,
      taskRuns: 2,
      usage: 1,
      egressRules: 1,
      secretBindings: 1,
      mcpServers: 1,
    });
    expect(rowsMentioning(file, 'acme')).toEqual({ audit: 1 });
    expect(rowsMentioning(file, 'globex')).toEqual(before);
    expect(store.groups.byFolder('acme')).toBeNull();
    expect(store.groupData.purge('acme')).toBeNull();
    expect(store.groupData.export('acme')).toBeNull();
  });
});
