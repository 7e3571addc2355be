import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { eventually } from '../test/fake-agent-runner.js';
import { tempDir } from '../test/harness.js';
import { settingsCheck } from './cli/doctor.js';
import { openStore } from './store/store.js';

const CLI = join(import.meta.dirname, 'cli.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process with its own data directory and no inherited Warren settings. */
function warren(
  args: string[],
  env: Record<string, string>,
  options: { untilStdout?: RegExp; thenSignal?: NodeJS.Signals } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: env.WARREN_DATA_DIR ?? tempDir(),
        WARREN_LOG_LEVEL: 'warn',
        ...env,
      },
      cwd: env.WARREN_DATA_DIR,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`warren ${args.join(' ')} timed out; stdout: ${stdout}; stderr: ${stderr}`));
    }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (options.untilStdout?.test(stdout) && options.thenSignal) {
        child.kill(options.thenSignal);
        options.untilStdout = undefined;
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Each test spawns the real CLI (tsx compiles it at every start, about 2 s, much more on a loaded machine).
describe('warren CLI', { timeout: 120_000 }, () => {
  it('starts, prints the chat link with its token, and stops cleanly on SIGTERM leaving a consistent store', async () => {
    const dataDir = tempDir();
    const run = await warren(
      ['start'],
      { WARREN_DATA_DIR: dataDir, WARREN_LOCAL_PORT: '0' },
      {
        untilStdout: /Warren is running/,
        thenSignal: 'SIGTERM',
      },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/http:\/\/127\.0\.0\.1:\d+\/#token=[\w-]{20,}/);
    const db = new Database(join(dataDir, 'warren.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.prepare('SELECT folder, is_admin AS isAdmin FROM groups').all()).toEqual([
      { folder: 'main', isAdmin: 1 },
    ]);
    db.close();
  });

  it('registers, lists and removes a group, and shows it in status', async () => {
    const env = { WARREN_DATA_DIR: tempDir() };
    const added = await warren(
      ['groups', 'add', 'local:team', '--folder', 'team', '--trigger', 'always'],
      env,
    );
    expect(added.code, added.stderr).toBe(0);
    const status = await warren(['status'], env);
    expect(status.stdout).toMatch(/team\s+always\s+local:team/);
    expect(status.stdout).toMatch(/Outbox: 0 waiting, 0 sent, 0 failed/);
    const removed = await warren(['groups', 'remove', 'team'], env);
    expect(removed.code).toBe(0);
    expect((await warren(['groups', 'list'], env)).stdout).not.toMatch(/local:team/);
  });

  it('lets a group see an extra folder only when the mount allowlist allows it', async () => {
    const dataDir = tempDir();
    const shared = tempDir('warren-shared-');
    const env = { WARREN_DATA_DIR: dataDir, WARREN_MOUNT_ALLOWLIST: join(dataDir, 'allowlist.json') };
    await warren(['groups', 'add', 'local:team', '--folder', 'team'], env);
    const refused = await warren(['groups', 'mount', 'team', shared], env);
    expect(refused.code).toBe(1); // refused, not misused: exit 2 is for usage errors
    expect(refused.stderr).toMatch(/does not allow it/);
    writeFileSync(env.WARREN_MOUNT_ALLOWLIST, JSON.stringify({ allowedRoots: [{ path: shared }] }));
    const allowed = await warren(['groups', 'mount', 'team', shared, '--as', 'shared'], env);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/read-only under \/workspace\/extra/);
    const rw = await warren(['groups', 'mount', 'team', shared, '--rw'], env);
    expect(rw.code).toBe(1);
    expect((await warren(['groups', 'unmount', 'team', 'shared'], env)).code).toBe(0);
  });

  it("sets a group's own disk quota, and takes it back to the default", async () => {
    const dataDir = tempDir();
    const env = { WARREN_DATA_DIR: dataDir };
    await warren(['groups', 'add', 'local:team', '--folder', 'team'], env);
    const set = await warren(['groups', 'quota', 'team', '250'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toMatch(/may use 250 MiB/);
    const store = openStore(join(dataDir, 'warren.db'));
    expect(store.groups.diskQuotaMb('team')).toBe(250);
    store.close();
    expect((await warren(['groups', 'quota', 'team', 'default'], env)).stdout).toMatch(
      /default disk quota again \(4096 MiB\)/,
    );
    expect((await warren(['groups', 'quota', 'team', 'lots'], env)).code).toBe(2);
    expect((await warren(['groups', 'quota', 'nobody', '10'], env)).code).toBe(1);
  });

  it('refuses a folder name with path tricks, with a clear message and exit code 1', async () => {
    const run = await warren(['groups', 'add', 'local:x', '--folder', '../etc'], {
      WARREN_DATA_DIR: tempDir(),
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/folder '\.\.\/etc' must be/);
  });

  it('refuses a second start on the same data, naming the first; the lock is free once the first is killed', async () => {
    const dataDir = tempDir();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: dataDir,
      WARREN_DATA_DIR: dataDir,
      WARREN_LOCAL_PORT: '0',
    };
    const first = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CLI, 'start'], {
      env: { ...env, WARREN_LOG_LEVEL: 'warn' },
      cwd: dataDir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let stdout = '';
      first.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      await eventually(() => stdout.includes('Warren is running'), 30_000, 'the first host');
      const before = readdirSync(dataDir).sort().join();
      const second = await warren(['start'], env);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`Warren is already running on ${dataDir} (process ${first.pid})`);
      expect(second.stdout).not.toContain('Warren is running');
      expect(first.exitCode).toBeNull();
      expect(readdirSync(dataDir).sort().join()).toBe(before);
      expect(readFileSync(join(dataDir, 'warren.pid'), 'utf8')).toBe(`${first.pid}\n`);
      // The running host left what it read of .env (none here); doctor sees a key added since.
      expect(settingsCheck(dataDir)).toMatchObject({ isOk: true });
      writeFileSync(join(dataDir, '.env'), 'ANTHROPIC_API_KEY=sk-ant-added-later\n');
      expect(settingsCheck(dataDir)?.detail).toMatch(
        new RegExp(
          `changed since the running Warren \\(process ${first.pid}\\) read it: ANTHROPIC_API_KEY added`,
        ),
      );
    } finally {
      const closed = new Promise((resolve) => first.once('close', resolve));
      first.kill('SIGKILL');
      await closed;
    }
    const third = await warren(['start'], env, { untilStdout: /Warren is running/, thenSignal: 'SIGTERM' });
    expect(third.code, third.stderr).toBe(0);
  });

  it('backs up the database to a new file, and refuses to overwrite one', async () => {
    const dataDir = tempDir();
    const env = { WARREN_DATA_DIR: dataDir };
    expect((await warren(['groups', 'add', 'local:team', '--folder', 'team'], env)).code).toBe(0);
    const file = join(dataDir, 'copy.db');
    const run = await warren(['backup', file], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`Backed up the database to ${file}`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const copy = new Database(file, { readonly: true });
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(copy.prepare('SELECT folder FROM groups ORDER BY folder').pluck().all()).toEqual(['team']);
    copy.close();
    const again = await warren(['backup', file], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('exists; name a new file');
  });

  it('prints the usage for `start --help` instead of starting Warren', async () => {
    const dataDir = tempDir();
    const run = await warren(['start', '--help'], { WARREN_DATA_DIR: dataDir, WARREN_LOCAL_PORT: '0' });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Usage|usage/);
    expect(run.stdout).not.toContain('Warren is running');
    expect(existsSync(join(dataDir, 'warren.db'))).toBe(false);
  });

  it('exits with 2 and says how to get help for an unknown command', async () => {
    const run = await warren(['frobnicate'], { WARREN_DATA_DIR: tempDir() });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown command 'frobnicate'.*\n.*warren --help/);
  });

  it('exits with 1 and names the setting when the configuration is invalid', async () => {
    const run = await warren(['status'], { WARREN_DATA_DIR: tempDir(), WARREN_MAX_AGENTS: 'many' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/WARREN_MAX_AGENTS/);
  });
});
