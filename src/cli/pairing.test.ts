import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { cliOwnerOps } from '../../test/helpers/cli-ops.js';
import { databasePath, ensureAdminGroup } from '../app.js';
import { registerGroup } from '../intake/registration.js';
import { openStore, type Store } from '../store/store.js';
import { runPairingCommand } from './pairing.js';

let store: Store;
let dataDir: string;
const now = () => 5_000_000;

beforeEach(() => {
  dataDir = tempDir();
  store = openStore(databasePath(dataDir));
  store.pairing.create(
    { code: 'PQRSTUVW', channel: 'telegram', chatId: '555', senderId: '555', senderName: 'Bob' },
    { now: now(), ttlMs: 3600_000, maxPending: 3 },
  );
});
afterEach(() => store.close());

const run = (...args: string[]) => runPairingCommand(args, cliOwnerOps(store, dataDir, now));

describe('warren pairing', () => {
  it('lists the people waiting, with their codes', async () => {
    expect(await run('list')).toEqual({
      code: 0,
      text: 'Pairing requests:\n  PQRS-TUVW  Bob (telegram:555), expires in 60 min',
    });
  });

  it('approve registers the chat, queues the welcome and audits who decided', async () => {
    expect(await run('approve', 'pqrs-tuvw', '--folder', 'bob')).toEqual({
      code: 0,
      text: "Bob (telegram:555) can talk to the agent of group 'bob' now.",
    });
    expect(store.chats.get('telegram', '555')?.groupId).toBe(store.groups.byFolder('bob')?.id);
    expect(store.outbox.byKey('pairing:PQRSTUVW:approved')).toMatchObject({
      channel: 'telegram',
      chatId: '555',
    });
    expect(store.audit.recent(1)[0]).toMatchObject({ actor: 'cli', action: 'pairing-approve' });
    expect((await run('list')).text).toBe('No pairing requests.');
  });

  it('deny turns the person away; an unknown code is an error', async () => {
    expect((await run('deny', 'PQRSTUVW')).code).toBe(0);
    expect(store.pairing.byCode('PQRSTUVW')?.status).toBe('denied');
    expect(await run('approve', 'PQRSTUVW')).toMatchObject({ code: 1, text: /not waiting for approval/ });
    expect((await run('frobnicate')).code).toBe(2);
  });
});

// Spawns the real CLI twice (tsx compiles it at every start): slow on a loaded machine.
describe('warren groups add --share', { timeout: 120_000 }, () => {
  it('binds a chat to an existing group, and refuses to share the admin group', () => {
    ensureAdminGroup(store, dataDir, 0);
    registerGroup(
      store,
      dataDir,
      {
        folder: 'family',
        name: 'Family',
        chat: { channel: 'telegram', chatId: '-1' },
        isDirect: false,
        trigger: 'always',
      },
      0,
    );
    store.close();
    const cli = (...args: string[]) =>
      spawnSync(
        process.execPath,
        ['--import', import.meta.resolve('tsx'), join(import.meta.dirname, '..', 'cli.ts'), ...args],
        {
          env: { PATH: process.env.PATH ?? '', HOME: dataDir, WARREN_DATA_DIR: dataDir },
          cwd: dataDir,
          encoding: 'utf8',
        },
      );
    const shared = cli('groups', 'add', 'whatsapp:4915112345678@s.whatsapp.net', '--share', 'family');
    expect(shared.stdout).toContain("now shares group 'family'");
    const refused = cli('groups', 'add', 'telegram:777', '--share', 'main');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('admin group cannot be shared');
    store = openStore(databasePath(dataDir));
    expect(store.chats.get('whatsapp', '4915112345678@s.whatsapp.net')?.groupId).toBe(
      store.groups.byFolder('family')?.id,
    );
  });
});
