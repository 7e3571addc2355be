import { describe, expect, it } from 'vitest';
import {
  encodeIpcFile,
  ipcFileName,
  isIpcFileName,
  MAX_IPC_FILE_BYTES,
  parseIpcFile,
  parseRunSettings,
  runSettingsToEnv,
} from './ipc.js';

describe('parseIpcFile', () => {
  it('accepts a prompt file from the host', () => {
    const result = parseIpcFile('input', JSON.stringify({ type: 'prompt', batchId: 'b1', text: 'hi' }));
    expect(result).toEqual({ ok: true, value: { type: 'prompt', batchId: 'b1', text: 'hi' } });
  });

  it('rejects text that is not JSON without throwing', () => {
    expect(parseIpcFile('input', '{"type":"prompt",')).toEqual({ ok: false, error: 'not JSON' });
  });

  it('rejects a file over the size cap before parsing it', () => {
    const text = JSON.stringify({ type: 'prompt', batchId: 'b1', text: 'x'.repeat(MAX_IPC_FILE_BYTES) });
    expect(parseIpcFile('input', text)).toEqual({ ok: false, error: 'file too large' });
  });

  it('counts the size in UTF-8 bytes, not characters', () => {
    const text = JSON.stringify({ type: 'log', level: 'info', message: 'é'.repeat(MAX_IPC_FILE_BYTES / 2) });
    expect(text.length).toBeLessThan(MAX_IPC_FILE_BYTES);
    expect(parseIpcFile('output', text)).toEqual({ ok: false, error: 'file too large' });
  });

  it('rejects an unknown file type', () => {
    const result = parseIpcFile('input', JSON.stringify({ type: 'exec', command: 'rm -rf /' }));
    expect(result.ok).toBe(false);
  });

  it('rejects a container file type arriving as host input', () => {
    const result = parseIpcFile('input', JSON.stringify({ type: 'ready', protocolVersion: 1 }));
    expect(result.ok).toBe(false);
  });

  it('rejects a send_message request whose chat is not "channel:chatId"', () => {
    const request = {
      type: 'request',
      id: 'r1',
      tool: 'send_message',
      args: { text: 'hi', chat: 'nochannel' },
    };
    expect(parseIpcFile('output', JSON.stringify(request)).ok).toBe(false);
  });

  it('rejects a request for a tool the protocol does not know', () => {
    const request = { type: 'request', id: 'r1', tool: 'register_group', args: {} };
    expect(parseIpcFile('output', JSON.stringify(request)).ok).toBe(false);
  });

  it('drops fields the schema does not name', () => {
    const result = parseIpcFile('input', JSON.stringify({ type: 'stop', reason: 'bye', group: 'admin' }));
    expect(result).toEqual({ ok: true, value: { type: 'stop', reason: 'bye' } });
  });

  it('accepts a turn-end event shaped like the host AgentEvent', () => {
    const event = {
      type: 'turn-end',
      id: 't1',
      batchIds: ['b1'],
      result: null,
      sessionId: null,
      isError: false,
    };
    expect(parseIpcFile('output', JSON.stringify(event))).toEqual({ ok: true, value: event });
  });
});

describe('encodeIpcFile', () => {
  it('refuses a file the reader would reject', () => {
    const result = encodeIpcFile('input', { type: 'prompt', batchId: '', text: 'hi' });
    expect(result.ok).toBe(false);
  });

  it('round-trips through parseIpcFile', () => {
    const file = { type: 'response' as const, id: 'r1', ok: false, error: 'chat not allowed' };
    const encoded = encodeIpcFile('input', file);
    if (!encoded.ok) throw new Error(encoded.error);
    expect(parseIpcFile('input', encoded.value)).toEqual({ ok: true, value: file });
  });
});

describe('ipc file names', () => {
  it('sort in sequence order', () => {
    const names = [10, 2, 1, 100].map((sequence) => ipcFileName(sequence, 'a-b'));
    expect([...names].sort()).toEqual([1, 2, 10, 100].map((sequence) => ipcFileName(sequence, 'a-b')));
  });

  it('exclude temp files and path tricks', () => {
    expect(isIpcFileName(ipcFileName(1, 'abc'))).toBe(true);
    expect(isIpcFileName('.tmp-abc')).toBe(false);
    expect(isIpcFileName('000000000001-../x.json')).toBe(false);
    expect(isIpcFileName('000000000001-abc.json.tmp')).toBe(false);
  });
});

describe('parseRunSettings', () => {
  const env = { WARREN_RUN_ID: 'r1', WARREN_GROUP_FOLDER: 'main', WARREN_CHAT: 'telegram:-100' };

  it('applies defaults for optional settings', () => {
    expect(parseRunSettings(env)).toEqual({
      ok: true,
      value: {
        runId: 'r1',
        groupFolder: 'main',
        isAdmin: false,
        chat: 'telegram:-100',
        sessionId: null,
        idleTimeoutMs: 300_000,
        assistantName: 'Warren',
        webSearch: false,
        mcpServers: [],
      },
    });
    expect(parseRunSettings({ ...env, WARREN_WEB_SEARCH: '1' })).toMatchObject({
      value: { webSearch: true },
    });
    expect(parseRunSettings({ ...env, WARREN_WEB_SEARCH: 'yes' })).toMatchObject({ ok: false });
    const servers = [{ name: 'crm', url: 'https://mcp.example.com/mcp' }];
    const withMcp = { ...env, WARREN_MCP_SERVERS: JSON.stringify(servers) };
    expect(parseRunSettings(withMcp)).toMatchObject({ value: { mcpServers: servers } });
    for (const bad of [
      'not json',
      '[{"name":"Bad Name","url":"https://x"}]',
      '[{"name":"a","url":"ftp://x"}]',
    ]) {
      expect(parseRunSettings({ ...env, WARREN_MCP_SERVERS: bad })).toMatchObject({ ok: false });
    }
  });

  it('names the env var that is wrong', () => {
    const result = parseRunSettings({ ...env, WARREN_IDLE_TIMEOUT_MS: 'soon' });
    expect(result).toMatchObject({ ok: false, error: expect.stringContaining('WARREN_IDLE_TIMEOUT_MS') });
  });

  it('round-trips through runSettingsToEnv', () => {
    const parsed = parseRunSettings({
      ...env,
      WARREN_IS_ADMIN: '1',
      WARREN_SESSION_ID: 's1',
      WARREN_MODEL: 'm',
    });
    if (!parsed.ok) throw new Error(parsed.error);
    expect(parseRunSettings(runSettingsToEnv(parsed.value))).toEqual(parsed);
  });
});
