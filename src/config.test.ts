import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test/harness.js';
import { ConfigError, defaultAgentCpus, loadConfig } from './config.js';

describe('config', () => {
  it('uses defaults when nothing is set', () => {
    const cwd = tempDir();
    const config = loadConfig({ env: { HOME: cwd }, cwd });
    expect(config).toMatchObject({
      dataDir: join(cwd, '.warren'),
      assistantName: 'Warren',
      maxConcurrentAgents: 5,
      localPort: 7777,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('gives an agent two CPUs, never more than the machine has', () => {
    const cwd = tempDir();
    const config = loadConfig({ env: { HOME: cwd }, cwd });
    expect(config.agentCpus).toBe(Math.min(2, availableParallelism()));
    expect(defaultAgentCpus()).toBeLessThanOrEqual(availableParallelism());
  });

  it('names the bad key and how to fix it', () => {
    const cwd = tempDir();
    const error = (() => {
      try {
        loadConfig({ env: { HOME: cwd, WARREN_MAX_AGENTS: 'lots' }, cwd });
      } catch (caught) {
        return caught as ConfigError;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error?.key).toBe('WARREN_MAX_AGENTS');
    expect(error?.message).toMatch(
      /invalid WARREN_MAX_AGENTS="lots".*Set WARREN_MAX_AGENTS to agents that may run at once/,
    );
  });

  it('keeps the audit log a year by default, forever at 0, and refuses a negative or fractional number of days', () => {
    const cwd = tempDir();
    const load = (days?: string) =>
      loadConfig({
        env: { HOME: cwd, ...(days === undefined ? {} : { WARREN_AUDIT_RETENTION_DAYS: days }) },
        cwd,
      });
    expect(load().auditRetentionDays).toBe(365);
    expect(load('0').auditRetentionDays).toBe(0);
    expect(() => load('-1')).toThrow(
      /invalid WARREN_AUDIT_RETENTION_DAYS="-1".*days to keep audit log entries/,
    );
    expect(() => load('1.5')).toThrow(/WARREN_AUDIT_RETENTION_DAYS/);
  });

  it('rejects an unknown timezone', () => {
    const cwd = tempDir();
    expect(() => loadConfig({ env: { HOME: cwd, WARREN_TIMEZONE: 'Mars/Olympus' }, cwd })).toThrow(
      /WARREN_TIMEZONE.*IANA/,
    );
  });

  it('reads .env, then the config file, with the environment winning', () => {
    const cwd = tempDir();
    const dataDir = join(cwd, 'data');
    writeFileSync(join(cwd, '.env'), `WARREN_DATA_DIR=${dataDir}\nWARREN_ASSISTANT_NAME=Jeeves\n`);
    loadConfig({ env: { HOME: cwd }, cwd }); // data dir need not exist for loading
    mkdirSync(dataDir);
    writeFileSync(
      join(dataDir, 'config.json'),
      JSON.stringify({ maxConcurrentAgents: 3, assistantName: 'FromFile' }),
    );
    const config = loadConfig({ env: { HOME: cwd, WARREN_MAX_AGENTS: '7' }, cwd });
    expect(config).toMatchObject({ dataDir, assistantName: 'Jeeves', maxConcurrentAgents: 7 });
  });

  it('rejects an unknown setting in the config file', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'config.json'), JSON.stringify({ maxAgents: 3 }));
    expect(() => loadConfig({ env: { HOME: cwd, WARREN_DATA_DIR: cwd }, cwd })).toThrow(
      /unknown setting 'maxAgents'/,
    );
  });

  it('rejects a config file that is not JSON', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'config.json'), '{ nope');
    expect(() => loadConfig({ env: { HOME: cwd, WARREN_DATA_DIR: cwd }, cwd })).toThrow(/not valid JSON/);
  });
});

describe('channel settings', () => {
  const load = (env: Record<string, string>) => {
    const cwd = tempDir();
    return loadConfig({ env: { HOME: cwd, WARREN_DATA_DIR: cwd, ...env }, cwd });
  };

  it('leaves Telegram and WhatsApp off unless configured', () => {
    expect(load({})).toMatchObject({
      telegramBotToken: '',
      telegramApiRoot: 'https://api.telegram.org',
      isWhatsAppEnabled: false,
      mediaMaxMb: 20,
    });
  });

  it('never repeats a malformed bot token in the error', () => {
    const token = 'not-a-token-but-secret-anyway';
    expect(() => load({ WARREN_TELEGRAM_BOT_TOKEN: token })).toThrow(ConfigError);
    try {
      load({ WARREN_TELEGRAM_BOT_TOKEN: token });
    } catch (error) {
      expect((error as Error).message).not.toContain(token);
      expect((error as Error).message).toContain('WARREN_TELEGRAM_BOT_TOKEN');
    }
  });

  it('sends the token over plain http only to a Bot API server on this machine', () => {
    expect(() => load({ WARREN_TELEGRAM_API_ROOT: 'http://bot-api.example.com' })).toThrow(/https/);
    expect(load({ WARREN_TELEGRAM_API_ROOT: 'http://127.0.0.1:8081' }).telegramApiRoot).toBe(
      'http://127.0.0.1:8081',
    );
  });

  it('refuses the model base URL and the mount allowlist path in config.json: they decide where secrets go', () => {
    for (const setting of [
      { modelBaseUrl: 'https://example.test' },
      { mountAllowlistPath: '/tmp/allow.json' },
    ]) {
      const cwd = tempDir();
      writeFileSync(join(cwd, 'config.json'), JSON.stringify(setting));
      expect(() => loadConfig({ env: { HOME: cwd, WARREN_DATA_DIR: cwd }, cwd })).toThrow(
        new RegExp(`'${Object.keys(setting)[0]}' can only be set in the environment`),
      );
    }
  });

  it('refuses a model base URL that is plain http to another machine', () => {
    const cwd = tempDir();
    const load = (url: string) =>
      loadConfig({ env: { HOME: cwd, WARREN_DATA_DIR: cwd, ANTHROPIC_BASE_URL: url }, cwd }).modelBaseUrl;
    expect(() => load('http://gateway.example.test')).toThrow(/ANTHROPIC_BASE_URL.*must be https/);
    expect(load('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(load('https://gateway.example.test')).toBe('https://gateway.example.test');
  });

  it('takes the bot token and the API root from the environment only, not from config.json', () => {
    const cwd = tempDir();
    writeFileSync(
      join(cwd, 'config.json'),
      JSON.stringify({ telegramBotToken: '123456:abcdefghijklmnopqrstuvwxyz' }),
    );
    expect(() => loadConfig({ env: { HOME: cwd, WARREN_DATA_DIR: cwd }, cwd })).toThrow(
      /only be set in the environment/,
    );
  });
});
