import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cliOpsFixture } from '../../test/helpers/cli-ops.js';
import { databasePath } from '../app.js';
import { readSecrets } from '../sandbox/egress/secrets.js';
import { openStore, type Store } from '../store/store.js';
import { runSecretsCommand, type SecretInput } from './secrets.js';

let store: Store;
let dataDir: string;
let ops: ReturnType<typeof cliOpsFixture>['ops'];
const now = () => 5_000_000;
// Split so that no line of this file holds the value a check searches for.
const VALUE = ['sk', 'live', 'Q7x9Zt'].join('_');

beforeEach(() => {
  ({ store, dataDir, ops } = cliOpsFixture(now));
});
afterEach(() => store.close());

const piped = (text: string): SecretInput => ({ isTTY: false, read: async () => text });
const unread: SecretInput = {
  isTTY: false,
  read: () => {
    throw new Error('nothing may be read');
  },
};
const secrets = (args: string[], input: SecretInput = unread) => runSecretsCommand(args, ops(), input);

describe('warren secrets', () => {
  it('set reads the whole value from stdin, less one trailing newline, and prints only the name', async () => {
    const set = await secrets(['set', 'API_KEY'], piped(`${VALUE}\n`));
    expect(set).toEqual({
      code: 0,
      text: "Stored secret 'API_KEY' (bind it to a group's host: warren secrets bind API_KEY FOLDER HOST).",
    });
    expect(readSecrets(dataDir).get('API_KEY')).toBe(VALUE);
    expect((await secrets(['set', 'API_KEY'], piped(`${VALUE}  \r\n`))).code).toBe(0);
    expect(readSecrets(dataDir).get('API_KEY')).toBe(`${VALUE}  `); // spaces are the value's own
    // Two lines are not one value: refused (1), the stored one kept.
    expect(await secrets(['set', 'API_KEY'], piped(`${VALUE}\nmore\n`))).toEqual({
      code: 1,
      text: 'the secret holds a line break, a control character or non-ASCII text',
    });
    expect(await secrets(['set', '9lives'], piped(VALUE))).toMatchObject({
      code: 1,
      text: /is not a secret name/,
    });
    expect(readSecrets(dataDir).get('API_KEY')).toBe(`${VALUE}  `);
    expect(JSON.stringify(store.audit.recent(20))).not.toContain(VALUE.slice(3));
    expect(JSON.stringify(store.audit.recent(20))).toContain('API_KEY'); // control: the audit holds the sets
  });

  it('set at a terminal, or with nothing on stdin, is a usage error (2) that says how to pipe the value in', async () => {
    const pipe = 'pipe the value in: printf %s "$VALUE" | warren secrets set API_KEY';
    expect(await secrets(['set', 'API_KEY'], { ...unread, isTTY: true })).toEqual({
      code: 2,
      text: `${pipe}\nRun \`warren secrets set --help\` for usage.`,
    });
    expect(await secrets(['set', 'API_KEY'], piped('\n'))).toMatchObject({
      code: 2,
      text: `no value came on stdin: ${pipe}\nRun \`warren secrets set --help\` for usage.`,
    });
    expect(readSecrets(dataDir).size).toBe(0);
  });

  it('bind, list, unbind and remove, with their defaults and options', async () => {
    await secrets(['set', 'API_KEY'], piped(VALUE));
    const bound = await secrets([
      'bind',
      'API_KEY',
      'sales',
      'api.example.com:8443',
      '--header',
      'X-Api-Key',
    ]);
    expect(bound).toMatchObject({
      code: 0,
      text: /^Group 'sales' sends secret 'API_KEY' to api.example.com:8443 as/,
    });
    await secrets(['bind', 'API_KEY', 'sales', 'hooks.example.com', '--template', 'Token {secret}']);
    expect(store.egress.bindings('sales').map(({ createdAt: _, ...binding }) => binding)).toEqual([
      {
        host: 'api.example.com',
        port: 8443,
        header: 'X-Api-Key',
        template: 'Bearer {secret}',
        secretName: 'API_KEY',
      },
      {
        host: 'hooks.example.com',
        port: 443,
        header: 'Authorization',
        template: 'Token {secret}',
        secretName: 'API_KEY',
      },
    ]);
    const list = await secrets(['list']);
    expect(list.code).toBe(0);
    expect(list.text).toContain('    sales  hooks.example.com:443  Authorization: Token {secret}');
    expect(list.text).not.toContain(VALUE);
    expect(await secrets(['remove', 'API_KEY'])).toMatchObject({ code: 1, text: /is bound for sales/ });
    expect(await secrets(['unbind', 'sales', 'hooks.example.com'])).toMatchObject({ code: 0 });
    expect(await secrets(['unbind', 'sales', 'hooks.example.com'])).toMatchObject({
      code: 1,
      text: /sends no secret/,
    });
    expect(await secrets(['remove', 'API_KEY', '--force'])).toEqual({
      code: 0,
      text: "Removed secret 'API_KEY' and its 1 binding.",
    });
    expect(await secrets(['remove', 'API_KEY'])).toMatchObject({
      code: 1,
      text: "no secret 'API_KEY' (see `warren secrets list`)",
    });
  });

  it('a refused binding is 1; a bad port, a URL, a stray option or a missing argument is a usage error (2)', async () => {
    await secrets(['set', 'API_KEY'], piped(VALUE));
    expect(await secrets(['bind', 'API_KEY', 'nope', 'api.example.com'])).toMatchObject({ code: 1 });
    expect(await secrets(['bind', 'API_KEY', 'sales', '*.example.com'])).toMatchObject({ code: 1 });
    expect(await secrets(['bind', 'API_KEY', 'sales', 'api.example.com', '--header', 'Host'])).toMatchObject({
      code: 1,
    });
    for (const args of [
      ['bind', 'API_KEY', 'sales', 'api.example.com:0'],
      ['bind', 'API_KEY', 'sales', 'https://api.example.com'],
      ['unbind', 'sales', 'api.example.com', '--template', 'x'],
      ['remove', 'API_KEY', '--yes'],
      ['bind', 'API_KEY', 'sales'],
      ['set'],
      ['show', 'API_KEY'],
    ]) {
      expect((await secrets(args)).code, args.join(' ')).toBe(2);
    }
    expect(store.egress.bindings('sales')).toEqual([]);
  });
});

describe('warren secrets set, run as a process', { timeout: 60_000 }, () => {
  it('takes the value piped to its stdin', () => {
    store.close();
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        join(import.meta.dirname, '..', 'cli.ts'),
        'secrets',
        'set',
        'PIPED',
      ],
      {
        env: { PATH: process.env.PATH ?? '', HOME: dataDir, WARREN_DATA_DIR: dataDir },
        cwd: dataDir,
        encoding: 'utf8',
        input: `${VALUE}\n`,
      },
    );
    store = openStore(databasePath(dataDir));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("Stored secret 'PIPED'");
    expect(run.stdout).not.toContain(VALUE);
    expect(readSecrets(dataDir).get('PIPED')).toBe(VALUE);
  });
});
