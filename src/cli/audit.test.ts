import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { databasePath } from '../app.js';
import { main } from '../cli.js';
import { formatInstant } from '../queue/prompt.js';
import { type AuditEntry, openStore } from '../store/store.js';
import { parseSince } from './audit.js';
import { UsageError } from './program.js';

const HOUR = 3_600_000;

describe('--since', () => {
  const now = Date.parse('2025-06-02T12:00:00Z');

  it('takes a duration back from now', () => {
    expect(parseSince('2h', now, 'UTC')).toBe(now - 2 * HOUR);
    expect(parseSince('1d', now, 'UTC')).toBe(now - 24 * HOUR);
    expect(parseSince('1h30m', now, 'UTC')).toBe(now - 1.5 * HOUR);
  });

  it('takes a date or a local time in the configured timezone, or an ISO time with an offset', () => {
    expect(parseSince('2025-06-01', now, 'Europe/Berlin')).toBe(Date.parse('2025-05-31T22:00:00Z'));
    expect(parseSince('2025-06-01T09:30', now, 'Europe/Berlin')).toBe(Date.parse('2025-06-01T07:30:00Z'));
    expect(parseSince('2025-06-01 09:30', now, 'UTC')).toBe(Date.parse('2025-06-01T09:30:00Z'));
    expect(parseSince('2025-06-01T09:30:00+05:00', now, 'UTC')).toBe(Date.parse('2025-06-01T04:30:00Z'));
  });

  it('refuses anything else as a usage error that says what to write', () => {
    for (const text of ['yesterday', '2025-13-45', '', '-2h', '2025-06-01T09']) {
      expect(() => parseSince(text, now, 'UTC'), text).toThrow(UsageError);
    }
    expect(() => parseSince('soon', now, 'UTC')).toThrow(/duration \(30m, 2h, 7d\) or a time/);
  });
});

describe('warren audit', () => {
  let dataDir: string;
  let savedEnv: NodeJS.ProcessEnv;
  const now = Date.now();

  beforeEach(() => {
    savedEnv = { ...process.env };
    for (const key of Object.keys(process.env)) if (key.startsWith('WARREN_')) delete process.env[key];
    dataDir = tempDir();
    Object.assign(process.env, { WARREN_DATA_DIR: dataDir, WARREN_TIMEZONE: 'UTC' });
    const store = openStore(databasePath(dataDir));
    const entry = (overrides: Partial<AuditEntry>): AuditEntry => ({
      groupFolder: 'team',
      actor: 'cli',
      action: 'register-chat',
      decision: 'allow',
      detail: { chat: 'local:team' },
      ...overrides,
    });
    store.audit.record(entry({}), now - 5 * HOUR);
    store.audit.record(
      entry({ action: 'mount', detail: { path: '/srv/shared', isReadOnly: true } }),
      now - 4 * HOUR,
    );
    store.audit.record(
      entry({ actor: 'agent:team', action: 'mount', decision: 'deny', detail: { reason: 'not allowed' } }),
      now - 3 * HOUR,
    );
    store.audit.record(
      entry({ groupFolder: 'family', action: 'set-quota', detail: { mb: 250 } }),
      now - 2 * HOUR,
    );
    // A hostile agent's text, with a terminal escape in it.
    store.audit.record(
      entry({
        actor: 'agent:team',
        action: 'ipc-flood',
        decision: 'deny',
        detail: { reason: 'bad \u001b[2Jname' },
      }),
      now - HOUR,
    );
    store.close();
  });
  afterEach(() => {
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
  });

  async function audit(...args: string[]) {
    const output = { stdout: '', stderr: '' };
    const code = await main(['audit', ...args], {
      writeOut: (text) => (output.stdout += text),
      writeErr: (text) => (output.stderr += text),
    });
    expect(code, output.stderr).toBe(0);
    return output.stdout;
  }
  const actionsIn = (table: string) =>
    table
      .trimEnd()
      .split('\n')
      .slice(2)
      .map((line) => line.trim().split(/\s+/).slice(3, 6).join(' ')); // GROUP ACTOR ACTION after the time

  it('prints a table, newest last, with times in the configured timezone', async () => {
    const table = await audit();
    const lines = table.trimEnd().split('\n');
    expect(lines[0]).toBe('Audit log (5 shown, newest last, times in UTC):');
    expect(lines[1]).toMatch(/^ {2}TIME\s+GROUP\s+ACTOR\s+ACTION\s+DECISION\s+DETAIL$/);
    expect(lines[2]).toContain(formatInstant(now - 5 * HOUR, 'UTC'));
    expect(lines[2]).toMatch(/team\s+cli\s+register-chat\s+allow\s+chat=local:team$/);
    expect(lines[3]).toMatch(/mount\s+allow\s+path=\/srv\/shared isReadOnly=true$/);
    expect(actionsIn(table)).toEqual([
      'team cli register-chat',
      'team cli mount',
      'team agent:team mount',
      'family cli set-quota',
      'team agent:team ipc-flood',
    ]);
    expect(table).not.toContain('\u001b');
    expect(table).toContain('reason=bad ?[2Jname');
  });

  it('filters by group, action, refusals, time and count, and they combine', async () => {
    expect(actionsIn(await audit('--group', 'family'))).toEqual(['family cli set-quota']);
    expect(actionsIn(await audit('--action', 'mount'))).toEqual(['team cli mount', 'team agent:team mount']);
    expect(actionsIn(await audit('--kind', 'mount'))).toEqual(['team cli mount', 'team agent:team mount']);
    expect(actionsIn(await audit('--denied'))).toEqual([
      'team agent:team mount',
      'team agent:team ipc-flood',
    ]);
    expect(actionsIn(await audit('--since', '150m'))).toEqual([
      'family cli set-quota',
      'team agent:team ipc-flood',
    ]);
    expect(actionsIn(await audit('--since', new Date(now - 3.5 * HOUR).toISOString()))).toHaveLength(3);
    expect(actionsIn(await audit('--limit', '2'))).toEqual([
      'family cli set-quota',
      'team agent:team ipc-flood',
    ]);
    expect(actionsIn(await audit('--action', 'mount', '--denied', '--group', 'team'))).toEqual([
      'team agent:team mount',
    ]);
    expect(await audit('--group', 'nobody')).toBe('No audit entries match.\n');
  });

  it('--json prints one object per line with the full detail', async () => {
    const lines = (await audit('--json', '--denied')).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    const entries = lines.map((line) => JSON.parse(line));
    expect(entries[0]).toEqual({
      time: new Date(now - 3 * HOUR).toISOString(),
      at: now - 3 * HOUR,
      lastAt: now - 3 * HOUR,
      groupFolder: 'team',
      actor: 'agent:team',
      action: 'mount',
      decision: 'deny',
      count: 1,
      detail: { reason: 'not allowed' },
      lastDetail: null,
    });
    expect(entries[1].detail).toEqual({ reason: 'bad \u001b[2Jname' });
    expect(lines[1]).not.toContain('\u001b'); // escaped as \u001b in the JSON text
    expect(await audit('--json', '--group', 'nobody')).toBe('');
  });

  it('reading the log does not add to it', async () => {
    await audit();
    await audit('--json');
    const store = openStore(databasePath(dataDir));
    expect(store.audit.recent(100)).toHaveLength(5);
    store.close();
  });
});
