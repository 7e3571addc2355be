import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { databasePath } from '../app.js';
import { loadOrCreateToken } from '../channels/local.js';
import { buildProgram, main } from '../cli.js';
import { Cli, type CliHost } from './program.js';

let dataDir: string;
let savedEnv: NodeJS.ProcessEnv;

// main() reads its settings from process.env: each test gets its own data directory and no inherited WARREN_*.
beforeEach(() => {
  savedEnv = { ...process.env };
  for (const key of Object.keys(process.env)) if (key.startsWith('WARREN_')) delete process.env[key];
  dataDir = tempDir();
  Object.assign(process.env, { WARREN_DATA_DIR: dataDir, WARREN_TIMEZONE: 'UTC', WARREN_LOG_LEVEL: 'warn' });
});
afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

/** Runs `warren ...argv` in this process, collecting what it prints. */
async function warren(...argv: string[]) {
  const output = { stdout: '', stderr: '' };
  const code = await main(argv, {
    writeOut: (text) => (output.stdout += text),
    writeErr: (text) => (output.stderr += text),
  });
  return { code, ...output };
}

/** Every command and subcommand of the real program, as the words that name it. */
function commandPaths(): { path: string[]; requiredArguments: number }[] {
  const unopened = () => {
    throw new Error('listing commands opens nothing');
  };
  const host: CliHost = { config: unopened, withStore: unopened, withOwnerOps: unopened, now: Date.now };
  const paths: { path: string[]; requiredArguments: number }[] = [];
  const walk = (command: Command, path: string[]) => {
    for (const sub of command.commands) {
      const subPath = [...path, sub.name()];
      const requiredArguments = sub.registeredArguments.filter((argument) => argument.required).length;
      paths.push({ path: subPath, requiredArguments });
      walk(sub, subPath);
    }
  };
  walk(buildProgram(new Cli({ writeOut: () => {}, writeErr: () => {} }), host), []);
  return paths;
}

/** One line on stderr, no stack trace. */
function expectOneLine(stderr: string) {
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
}

const paths = commandPaths();
const names = (filter: (entry: (typeof paths)[number]) => boolean) =>
  paths.filter(filter).map((entry) => entry.path.join(' '));

describe('every warren command', () => {
  it('the list covers the commands the README documents', () => {
    expect(names(() => true)).toEqual(
      expect.arrayContaining([
        'start',
        'chat',
        'status',
        'groups add',
        'groups mount',
        'pairing approve',
        'tasks run-now',
        'audit',
        'usage',
        'groups budget',
        'groups export',
        'net allow',
        'secrets set',
        'secrets bind',
        'mcp add',
        'image build',
        'service install',
        'backup',
        'logs',
        'doctor',
        'help',
        'version',
      ]),
    );
  });

  it('(control: a command that does run leaves its store in the data directory)', async () => {
    expect((await warren('status')).code).toBe(0);
    expect(readdirSync(dataDir)).toContain('warren.db');
  });

  it.each(names(() => true))(
    '`warren %s --help` prints its own usage, exits 0 and does nothing',
    async (name) => {
      const run = await warren(...name.split(' '), '--help');
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: warren ${name}( |$)`, 'm'));
      expect(run.stdout).not.toContain('Warren is running');
      expect(readdirSync(dataDir)).toEqual([]); // no store, no log, no lock: nothing ran
    },
  );

  it.each(names(() => true))('`warren %s --bogus-flag` exits 2 naming the flag', async (name) => {
    const run = await warren(...name.split(' '), '--bogus-flag');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^warren: unknown option '--bogus-flag'.*\nRun `warren .*--help` for usage\.\n$/,
    );
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it.each(names((entry) => entry.requiredArguments > 0))(
    '`warren %s` without its arguments exits 2',
    async (name) => {
      const run = await warren(...name.split(' '));
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        /^warren: missing required argument '[\w-]+'\nRun `warren .* --help` for usage\.\n$/,
      );
      expect(readdirSync(dataDir)).toEqual([]);
    },
  );
});

describe('warren help, version and mistakes', () => {
  it('`warren`, `warren help` and `warren --help` list the commands and the exit codes', async () => {
    for (const argv of [[], ['help'], ['--help']]) {
      const run = await warren(...argv);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^Usage: warren \[options\] \[command\]/);
      expect(run.stdout).toMatch(/audit \[options\]\s+the audit log/);
      expect(run.stdout).toContain('Exit codes: 0 done; 1 refused or failed');
    }
  });

  it('`warren help config` prints every setting; `warren help groups add` that command', async () => {
    const config = await warren('help', 'config');
    expect(config.stdout).toMatch(/WARREN_DATA_DIR\s+where the database/);
    expect(config.stdout).toMatch(/WARREN_TIMEZONE/);
    expect((await warren('help', 'groups', 'add')).stdout).toMatch(
      /^Usage: warren groups add \[options\] <chat>/,
    );
    expect(await warren('help', 'groups', 'nope')).toMatchObject({
      code: 2,
      stderr: /unknown command 'groups nope'/,
    });
  });

  it('a command that needs a subcommand, given none, prints its usage on stderr and exits 2', async () => {
    for (const name of ['image', 'service']) {
      const run = await warren(name);
      expect(run.code, name).toBe(2);
      expect(run.stderr).toMatch(new RegExp(`^Usage: warren ${name} \\[options\\] \\[command\\]`));
      expect(run.stderr).not.toContain('outputHelp');
    }
  });

  it('`--version` and `version` print the package version', async () => {
    expect((await warren('--version')).stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
    expect((await warren('version')).stdout).toBe((await warren('--version')).stdout);
  });

  it('an unknown command or subcommand, a bad choice or value is a usage error (2)', async () => {
    expect(await warren('frobnicate')).toMatchObject({ code: 2, stderr: /unknown command 'frobnicate'/ });
    expect(await warren('tasks', 'explode')).toMatchObject({
      code: 2,
      stderr: /unknown command 'tasks explode'\nRun `warren tasks --help`/,
    });
    expect(await warren('groups', 'add', 'local:x', '--folder', 'x', '--trigger', 'sometimes')).toMatchObject(
      {
        code: 2,
        stderr: /'sometimes' is invalid\. Allowed choices are mention, always/,
      },
    );
    expect(await warren('groups', 'add', 'local:x')).toMatchObject({
      code: 2,
      stderr: /needs --folder NAME/,
    });
    expect(await warren('pairing', 'approve', 'ABCD', '--folder', 'a', '--share', 'b')).toMatchObject({
      code: 2,
      stderr: /cannot be used with/,
    });
    expect(await warren('audit', '--limit', 'lots')).toMatchObject({ code: 2, stderr: /--limit/ });
    expect(readdirSync(dataDir)).toEqual([]);
  });
});

describe('expected failures: one line, no stack, exit 1', () => {
  it('warren chat before Warren ever ran here', async () => {
    const run = await warren('chat');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^warren: Warren has not run on .* run `warren start` first/);
    expectOneLine(run.stderr);
  });

  it('warren chat when Warren is not running', async () => {
    loadOrCreateToken(dataDir);
    // A port that was free a moment ago: nothing listens there.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    process.env.WARREN_LOCAL_PORT = String(port);
    const run = await warren('chat');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^warren: .*127\\.0\\.0\\.1:${port}`));
    expectOneLine(run.stderr);
  });

  it('warren backup onto a path whose folder is a file', async () => {
    writeFileSync(join(dataDir, 'a-file'), 'x');
    const run = await warren('backup', join(dataDir, 'a-file', 'copy.db'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('a-file is a file, not a folder');
    expectOneLine(run.stderr);
  });

  it('a bad setting names the setting', async () => {
    process.env.WARREN_MAX_AGENTS = 'many';
    const run = await warren('status');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^warren: .*WARREN_MAX_AGENTS/);
    expectOneLine(run.stderr);
  });

  it('a database from a newer Warren', async () => {
    mkdirSync(dataDir, { recursive: true });
    const db = new Database(databasePath(dataDir));
    db.pragma('user_version = 9999');
    db.close();
    const run = await warren('status');
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^warren: .*newer than this Warren/);
    expectOneLine(run.stderr);
  });

  it('a group that does not exist is refused', async () => {
    for (const argv of [
      ['groups', 'remove', 'nobody'],
      ['groups', 'quota', 'nobody', '10'],
      ['tasks', '--group', 'nobody'],
      ['groups', 'budget', 'nobody', '--daily', '1'],
      ['groups', 'export', 'nobody'],
      ['usage', '--group', 'nobody'],
    ]) {
      const run = await warren(...argv);
      expect(run.code, argv.join(' ')).toBe(1);
      expectOneLine(run.stderr);
    }
  });
});

describe('budgets, usage and a client leaving, from the CLI', () => {
  async function withGroup(folder: string) {
    expect((await warren('groups', 'add', `local:${folder}`, '--folder', folder)).code).toBe(0);
  }

  it('groups budget sets what a group may spend; usage shows it; a bad amount is a usage error', async () => {
    await withGroup('sales');
    const set = await warren('groups', 'budget', 'sales', '--daily', '2.50', '--monthly', '40');
    expect(set).toMatchObject({
      code: 0,
      stdout:
        "Budget of group 'sales': 2.50 USD daily, 40.00 USD monthly. It applies from its next model call.\n",
    });
    const usage = await warren('usage', '--group', 'sales');
    expect(usage.code).toBe(0);
    expect(usage.stdout).toMatch(/^sales\s+0\.00\s+2\.50\s+0\.00\s+40\.00$/m);
    for (const argv of [['--daily', 'cheap'], ['--monthly', '-3'], []]) {
      const run = await warren('groups', 'budget', 'sales', ...argv);
      expect(run.code, argv.join(' ')).toBe(2);
      expectOneLine(run.stderr.split('\n')[0] ?? '');
    }
    const audit = await warren('audit', '--action', 'set-budget', '--json');
    expect(audit.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('groups export writes a new 0600 file, never over another; remove --purge --yes deletes the group', async () => {
    await withGroup('client');
    const file = join(dataDir, 'client.jsonl');
    const exported = await warren('groups', 'export', 'client', '--out', file);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toMatch(/^Exported group 'client'/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8').split('\n')[0] ?? '')).toMatchObject({ type: 'group' });
    const again = await warren('groups', 'export', 'client', '--out', file);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/EEXIST/);
    const purged = await warren('groups', 'remove', 'client', '--purge', '--yes');
    expect(purged.code).toBe(0);
    expect(purged.stdout).toMatch(/^Purged group 'client'/);
    expect((await warren('groups', 'export', 'client')).code).toBe(1);
  });
});
