import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerTestGroup } from '../../test/harness.js';
import { createMemoryProposals } from '../intake/memory-proposals.js';
import { silentLogger } from '../log.js';
import {
  type InputFile,
  ipcFileName,
  MAX_GLOBAL_MEMORY_BYTES,
  MAX_IPC_FILE_BYTES,
  type OutputFile,
  parseIpcFile,
} from '../protocol/ipc.js';
import type { Group } from '../store/records.js';
import { type AuditEntry, openStore, type Store } from '../store/store.js';
import type { AgentEvent } from '../types.js';
import { createRunIpc, type RunIpcDeps } from './ipc.js';
import { clearRunDirs, prepareRunDirs } from './ipc-folder.js';

let root: string;
let store: Store;
let admin: Group;
let family: Group;
let work: Group;

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'warren-ipc-'));
  store = openStore(':memory:');
  const register = (folder: string, isAdmin = false) =>
    registerTestGroup(store, root, folder, { isAdmin, now: 1 });
  admin = register('main', true);
  family = register('family');
  work = register('work');
});

afterEach(() => {
  store.close();
  rmSync(root, { recursive: true, force: true });
});

function setUp(group: Group, overrides: Partial<RunIpcDeps> = {}) {
  const runDir = path.join(root, 'ipc', group.folder);
  const { inputDir, outputDir } = prepareRunDirs(runDir, { uid: 1000, gid: 1000 });
  const events: AgentEvent[] = [];
  const audits: AuditEntry[] = [];
  const floods: string[] = [];
  let sequence = 0;
  const ipc = createRunIpc({
    runDir,
    group,
    chat: { channel: 'fake', chatId: group.folder },
    store,
    audit: (entry) => audits.push(entry),
    log: silentLogger(),
    now: Date.now,
    onEvent: (event) => events.push(event),
    onAbuse: (reason) => floods.push(reason),
    fallbackScanMs: 60_000,
    ...overrides,
  });
  const write = (file: OutputFile | string, name = ipcFileName(++sequence, 'x')) => {
    writeFileSync(path.join(outputDir, name), typeof file === 'string' ? file : JSON.stringify(file));
    return name;
  };
  const inputs = (): InputFile[] =>
    readdirSync(inputDir)
      .sort()
      .map((name) => {
        const parsed = parseIpcFile('input', readFileSync(path.join(inputDir, name), 'utf8'));
        if (!parsed.ok) throw new Error(parsed.error);
        return parsed.value;
      });
  const responses = () => inputs().filter((file) => file.type === 'response');
  return { ipc, events, audits, floods, write, inputs, responses, inputDir, outputDir };
}

const turnEnd = (id: string, batchIds: string[], result: string | null = 'hi'): OutputFile => ({
  type: 'turn-end',
  id,
  batchIds,
  result,
  sessionId: 's1',
  isError: false,
});

describe('run IPC', () => {
  it('hands prompts to the container as ordered, parseable input files', () => {
    const { ipc, inputs } = setUp(family);
    expect(ipc.writePrompt('b1', 'first')).toBe(true);
    expect(ipc.writePrompt('b2', 'second')).toBe(true);
    expect(ipc.writeStop('bye')).toBe(true);
    expect(inputs()).toEqual([
      { type: 'prompt', batchId: 'b1', text: 'first' },
      { type: 'prompt', batchId: 'b2', text: 'second' },
      { type: 'stop', reason: 'bye' },
    ]);
  });

  it('processes output files in name order, each once, and removes them', async () => {
    const { ipc, events, write, outputDir } = setUp(family);
    ipc.writePrompt('b1', 'p1');
    ipc.writePrompt('b2', 'p2');
    write(turnEnd('t2', ['b2'], 'second'), ipcFileName(2, 'b'));
    write(turnEnd('t1', ['b1'], 'first'), ipcFileName(1, 'a'));
    await ipc.scan();
    await ipc.scan();
    expect(events.map((event) => (event.type === 'turn-end' ? event.result : null))).toEqual([
      'first',
      'second',
    ]);
    expect(readdirSync(outputDir)).toEqual([]);
  });

  it('ignores temp files until they are renamed', async () => {
    const { ipc, events, write } = setUp(family);
    ipc.writePrompt('b1', 'p1');
    write(turnEnd('t1', ['b1']), '.tmp-123');
    await ipc.scan();
    expect(events).toEqual([]);
  });

  it('refuses a turn-end naming a batch this run was never given: nothing delivered, no session kept', async () => {
    const { ipc, events, audits, write } = setUp(family);
    ipc.writePrompt('b1', 'p1');
    write(turnEnd('t1', ['b1', 'someone-elses-batch'], 'forged reply'));
    write(turnEnd('t2', ['nobodys'], 'another forged reply'));
    await ipc.scan();
    expect(events).toEqual([]);
    expect(audits).toEqual([
      expect.objectContaining({ action: 'ipc-turn-end', decision: 'deny' }),
      expect.objectContaining({ action: 'ipc-turn-end', decision: 'deny' }),
    ]);
  });

  it('takes a batch as answered once: a second turn-end for it is refused', async () => {
    const { ipc, events, audits, write } = setUp(family);
    ipc.writePrompt('b1', 'p1');
    write(turnEnd('t1', ['b1'], 'the answer'));
    write(turnEnd('t2', ['b1'], 'a second answer'));
    await ipc.scan();
    expect(events).toEqual([expect.objectContaining({ type: 'turn-end', result: 'the answer' })]);
    expect(audits).toEqual([expect.objectContaining({ action: 'ipc-turn-end', decision: 'deny' })]);
  });

  it('refuses a symlink without reading its target', async () => {
    const { ipc, events, audits, outputDir } = setUp(family);
    ipc.writePrompt('b1', 'p1');
    const secret = path.join(root, 'secret.json');
    writeFileSync(secret, JSON.stringify(turnEnd('t1', ['b1'])));
    symlinkSync(secret, path.join(outputDir, ipcFileName(1, 'link')));
    await ipc.scan();
    expect(events).toEqual([]);
    expect(audits).toEqual([
      expect.objectContaining({
        groupFolder: 'family',
        action: 'ipc-file',
        decision: 'deny',
        detail: expect.objectContaining({ reason: 'symlink refused' }),
      }),
    ]);
    expect(readdirSync(outputDir)).toEqual([]);
    expect(readFileSync(secret, 'utf8')).toContain('t1');
  });

  it('refuses a file over the size cap and anything that is not a regular file, never entering a folder', async () => {
    const { ipc, events, audits, write, outputDir } = setUp(family);
    const runDir = path.dirname(outputDir);
    write(`{"type":"log","level":"info","message":"${'x'.repeat(MAX_IPC_FILE_BYTES)}"}`);
    const folder = path.join(outputDir, ipcFileName(2, 'dir'));
    mkdirSync(path.join(folder, 'deeper'), { recursive: true });
    writeFileSync(path.join(folder, 'deeper', 'kept.txt'), 'the host never walks in here');
    execFileSync('mkfifo', [path.join(outputDir, ipcFileName(3, 'fifo'))]);
    await ipc.scan();
    expect(events).toEqual([]);
    expect(audits.map((entry) => entry.detail.reason)).toEqual([
      expect.stringMatching(/^file too large/),
      'a folder, not a file (cleared after the run)',
      'not a regular file',
    ]);
    // The folder stays for the clean-up after the run: set aside whole, never walked by the host.
    expect(readdirSync(outputDir)).toEqual([ipcFileName(2, 'dir')]);
    const setAside = clearRunDirs(runDir);
    expect(setAside).toHaveLength(1);
    expect(
      readFileSync(path.join(setAside[0] as string, ipcFileName(2, 'dir'), 'deeper', 'kept.txt'), 'utf8'),
    ).toBe('the host never walks in here');
    expect(readdirSync(runDir).sort()).toEqual(['input', path.basename(setAside[0] as string)].sort());
  });

  it('rejects and audits malformed files, answering a request whose id it can read', async () => {
    const { ipc, events, audits, write, responses } = setUp(family);
    write('{not json');
    write({ type: 'turn-end', id: 't1' } as unknown as OutputFile);
    write(JSON.stringify({ type: 'request', id: 'r1', tool: 'delete_everything', args: {} }));
    write('junk', 'not-an-ipc-name.txt');
    await ipc.scan();
    expect(events).toEqual([]);
    expect(audits).toHaveLength(4);
    expect(audits.every((entry) => entry.decision === 'deny' && entry.action === 'ipc-file')).toBe(true);
    expect(audits.map((entry) => entry.detail.reason)).toContain('not JSON');
    expect(responses()).toEqual([
      expect.objectContaining({
        type: 'response',
        id: 'r1',
        ok: false,
        error: expect.stringMatching(/invalid/),
      }),
    ]);
  });

  it('lets an agent send to its own chat without naming it', async () => {
    const { ipc, events, audits, write, responses } = setUp(family);
    write({ type: 'request', id: 'r1', tool: 'send_message', args: { text: 'hello' } });
    write({ type: 'request', id: 'r2', tool: 'send_message', args: { text: 'again', chat: 'fake:family' } });
    await ipc.scan();
    expect(events).toEqual([
      { type: 'agent-message', id: 'request:r1', chat: { channel: 'fake', chatId: 'family' }, text: 'hello' },
      { type: 'agent-message', id: 'request:r2', chat: { channel: 'fake', chatId: 'family' }, text: 'again' },
    ]);
    expect(responses()).toEqual([
      { type: 'response', id: 'r1', ok: true },
      { type: 'response', id: 'r2', ok: true },
    ]);
    expect(audits).toEqual([]);
  });

  it("denies and audits a send_message that names another group's chat", async () => {
    const { ipc, events, audits, write, responses } = setUp(family);
    write({ type: 'request', id: 'r1', tool: 'send_message', args: { text: 'psst', chat: 'fake:work' } });
    await ipc.scan();
    expect(events).toEqual([]);
    expect(responses()).toEqual([
      expect.objectContaining({ id: 'r1', ok: false, error: 'this group may only send to its own chat' }),
    ]);
    expect(audits).toEqual([
      expect.objectContaining({
        groupFolder: 'family',
        actor: 'agent:family',
        action: 'send-message',
        decision: 'deny',
        detail: expect.objectContaining({ chat: 'fake:work' }),
      }),
    ]);
  });

  it("sends a file from the group's own folder, and refuses one outside it (.., another group's file, a symlink)", async () => {
    const { ipc, events, audits, write, responses } = setUp(family);
    const familyDir = path.join(root, 'groups', 'family');
    mkdirSync(path.join(familyDir, 'reports'));
    writeFileSync(path.join(familyDir, 'reports', 'q3.txt'), 'numbers');
    writeFileSync(path.join(root, 'groups', 'work', 'secret.txt'), 'work only');
    symlinkSync(path.join(root, 'groups', 'work', 'secret.txt'), path.join(familyDir, 'link.txt'));
    write({ type: 'request', id: 'f1', tool: 'send_file', args: { path: 'reports/q3.txt', caption: 'Q3' } });
    write({ type: 'request', id: 'f2', tool: 'send_file', args: { path: '../work/secret.txt' } });
    write({ type: 'request', id: 'f3', tool: 'send_file', args: { path: 'link.txt' } });
    write({ type: 'request', id: 'f4', tool: 'send_file', args: { path: '/etc/passwd' } });
    await ipc.scan();
    expect(events).toEqual([
      {
        type: 'agent-file',
        id: 'request:f1',
        chat: { channel: 'fake', chatId: 'family' },
        path: expect.stringMatching(/-q3\.txt$/),
        caption: 'Q3',
      },
    ]);
    // Delivery reads a host-only copy, so swapping the agent's file afterwards changes nothing.
    const sent = (events[0] as { path: string }).path;
    expect(path.dirname(sent)).toBe(path.join(root, 'outgoing'));
    expect(readFileSync(sent, 'utf8')).toBe('numbers');
    expect(realpathSync(familyDir)).not.toBe(path.dirname(sent));
    expect(responses().map((response) => [response.id, response.ok])).toEqual([
      ['f1', true],
      ['f2', false],
      ['f3', false],
      ['f4', false],
    ]);
    expect(audits.filter((entry) => entry.action === 'send-file' && entry.decision === 'deny')).toHaveLength(
      3,
    );
  });

  it('authorizes by the folder the file came from, not by what the file claims', async () => {
    // The file pretends to come from the admin group; the folder says family.
    const { ipc, events, write } = setUp(family);
    write(
      JSON.stringify({
        type: 'request',
        id: 'r1',
        tool: 'send_message',
        args: { text: 'psst', chat: 'fake:work' },
        group: 'main',
        isAdmin: true,
      }),
    );
    await ipc.scan();
    expect(events).toEqual([]);
  });

  it('lets the admin group send to a registered chat, and audits it', async () => {
    const { ipc, events, audits, write, responses } = setUp(admin);
    write({ type: 'request', id: 'r1', tool: 'send_message', args: { text: 'reminder', chat: 'fake:work' } });
    await ipc.scan();
    expect(events).toEqual([
      {
        type: 'agent-message',
        id: 'request:r1',
        chat: { channel: 'fake', chatId: 'work' },
        text: 'reminder',
      },
    ]);
    expect(responses()).toEqual([{ type: 'response', id: 'r1', ok: true }]);
    expect(audits).toEqual([
      expect.objectContaining({ groupFolder: 'main', action: 'send-message', decision: 'allow' }),
    ]);
    expect(work.folder).toBe('work');
  });

  it('denies the admin group a chat that is registered to no group', async () => {
    const { ipc, events, audits, write, responses } = setUp(admin);
    write({ type: 'request', id: 'r1', tool: 'send_message', args: { text: 'hi', chat: 'telegram:12345' } });
    await ipc.scan();
    expect(events).toEqual([]);
    expect(responses()).toEqual([expect.objectContaining({ ok: false })]);
    expect(audits).toEqual([expect.objectContaining({ decision: 'deny', action: 'send-message' })]);
  });

  it('caps a flood: files past the per-second cap are refused unread, audited once, and reported', async () => {
    const { ipc, events, audits, floods, write, outputDir } = setUp(family, { maxFilesPerSecond: 10 });
    for (let index = 0; index < 40; index++) write({ type: 'log', level: 'info', message: `line ${index}` });
    write({ type: 'request', id: 'late', tool: 'send_message', args: { text: 'hi' } });
    await ipc.scan();
    expect(events).toEqual([]);
    expect(floods).toEqual(['more than 10 IPC files in one second']);
    expect(audits).toEqual([expect.objectContaining({ action: 'ipc-flood', decision: 'deny' })]);
    expect(readdirSync(outputDir)).toEqual([]);
  });

  it('caps the files of one run', async () => {
    const { ipc, floods, write } = setUp(family, { maxFilesPerRun: 3, maxFilesPerSecond: 1000 });
    for (let index = 0; index < 5; index++) write({ type: 'log', level: 'info', message: `line ${index}` });
    await ipc.scan();
    expect(floods).toEqual(['more than 3 IPC files in one run']);
  });

  it('picks up files through the watcher without an explicit scan', async () => {
    const { ipc, events, write } = setUp(family);
    ipc.writePrompt('b1', 'p1');
    ipc.start();
    write(turnEnd('t1', ['b1']));
    const deadline = Date.now() + 3000;
    while (events.length === 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 10));
    ipc.close();
    expect(events).toHaveLength(1);
  });

  it('tells the caller when the runner is ready and when it is exiting', async () => {
    const ready: number[] = [];
    const exits: string[] = [];
    const { ipc, write } = setUp(family, {
      onReady: (version) => ready.push(version),
      onRunnerExit: (exit) => exits.push(exit.reason),
    });
    write({ type: 'ready', protocolVersion: 1 });
    write({ type: 'exit', reason: 'idle' });
    await ipc.scan();
    expect(ready).toEqual([1]);
    expect(exits).toEqual(['idle']);
  });

  it('reads and removes nothing through an output folder swapped for a symlink', async () => {
    const { ipc, events, outputDir } = setUp(family);
    const elsewhere = path.join(root, 'elsewhere');
    mkdirSync(elsewhere);
    const precious = path.join(elsewhere, ipcFileName(1, 'precious'));
    writeFileSync(precious, JSON.stringify({ type: 'log', level: 'info', message: 'keep me' }));
    rmSync(outputDir, { recursive: true });
    symlinkSync(elsewhere, outputDir);
    await ipc.scan();
    expect(events).toEqual([]);
    expect(readFileSync(precious, 'utf8')).toContain('keep me');
    // Clearing the run takes the link away, not what it points at.
    clearRunDirs(path.dirname(outputDir));
    expect(readFileSync(precious, 'utf8')).toContain('keep me');
  });

  it('starts each run with empty folders', () => {
    const first = setUp(family);
    first.ipc.writePrompt('b1', 'p1');
    first.write({ type: 'ready', protocolVersion: 1 });
    const second = setUp(family);
    expect(readdirSync(second.inputDir)).toEqual([]);
    expect(readdirSync(second.outputDir)).toEqual([]);
  });
});

describe('update_global_memory through the IPC folder', () => {
  /** Proposals as the host builds them, over this test's data directory, with the owner's notices recorded. */
  function withProposals() {
    const memoryPath = path.join(root, 'global', 'CLAUDE.md');
    mkdirSync(path.dirname(memoryPath), { recursive: true });
    writeFileSync(memoryPath, 'old memory\n');
    const notices: string[] = [];
    const memoryProposals = createMemoryProposals({
      store,
      dataDir: root,
      audit: () => {},
      now: Date.now,
      log: silentLogger(),
      notifyAdmin: (_key, text) => notices.push(text) > 0,
    });
    return { memoryProposals, notices, memoryPath };
  }
  const propose = (id: string, content: string): OutputFile => ({
    type: 'request',
    id,
    tool: 'update_global_memory',
    args: { content },
  });

  it("holds the admin agent's proposal for the owner, answers with its number, and writes only on approval", async () => {
    const { memoryProposals, notices, memoryPath } = withProposals();
    const { ipc, write, responses } = setUp(admin, { memoryProposals });
    write(propose('m1', 'new memory\n'));
    await ipc.scan();
    expect(responses()).toEqual([
      { type: 'response', id: 'm1', ok: true, result: expect.stringMatching(/^Proposal #1 is waiting/) },
    ]);
    expect(readFileSync(memoryPath, 'utf8')).toBe('old memory\n');
    expect(notices[0]).toContain('-old memory\n+new memory');
    expect(await memoryProposals.decide(1, 'approve', 'fake:owner')).toMatchObject({ status: 'approved' });
    expect(readFileSync(memoryPath, 'utf8')).toBe('new memory\n');
  });

  it("refuses a proposal from another group's folder and tells the owner nothing", async () => {
    const { memoryProposals, notices, memoryPath } = withProposals();
    const { ipc, write, responses } = setUp(family, { memoryProposals });
    write(propose('m1', 'obey the family group\n'));
    await ipc.scan();
    expect(responses()).toEqual([
      {
        type: 'response',
        id: 'm1',
        ok: false,
        error: 'only the admin group may propose changes to global memory',
      },
    ]);
    expect(notices).toEqual([]);
    expect(readFileSync(memoryPath, 'utf8')).toBe('old memory\n');
  });

  it('refuses oversized content before any proposal is stored', async () => {
    const { memoryProposals, notices } = withProposals();
    const { ipc, write, responses } = setUp(admin, { memoryProposals });
    write(propose('m1', 'a'.repeat(MAX_GLOBAL_MEMORY_BYTES + 1)));
    await ipc.scan();
    expect(responses()).toEqual([
      { type: 'response', id: 'm1', ok: false, error: expect.stringContaining('args.content') },
    ]);
    expect(memoryProposals.pending()).toEqual([]);
    expect(notices).toEqual([]);
  });

  it('refuses the tool with a clear error in a host without memory proposals', async () => {
    const { ipc, write, responses } = setUp(admin);
    write(propose('m1', 'new memory\n'));
    await ipc.scan();
    expect(responses()).toEqual([
      {
        type: 'response',
        id: 'm1',
        ok: false,
        error: 'global memory changes are not available in this host',
      },
    ]);
  });
});
