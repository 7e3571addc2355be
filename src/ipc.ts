// The host side of one run's file IPC: writes input/ files, reads, authorizes and answers what the agent writes to output/.
import { randomUUID } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  constants,
  type FSWatcher,
  promises as fs,
  lstatSync,
  mkdirSync,
  renameSync,
  rmSync,
  watch,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { formatChatAddress, parseChatAddress } from './groups.js';
import {
  encodeIpcFile,
  type InputFile,
  IPC_INPUT_DIR,
  IPC_OUTPUT_DIR,
  IPC_PROTOCOL_VERSION,
  type IpcResult,
  ipcFileName,
  isIpcFileName,
  MAX_IPC_FILE_BYTES,
  MAX_MESSAGE_CHARS,
  MAX_SHORT_CHARS,
  type OutputFile,
  parseIpcFile,
  type SendMessageRequest,
  type TaskToolRequest,
} from './ipc-protocol.js';
import type { Logger } from './log.js';
import type { AuditEntry, Store } from './store.js';
import type { TaskTools } from './task-requests.js';
import type { AgentEvent, ChatAddress, Group, PreCheck } from './types.js';

/** Output files one run may hand the host in total; past it everything is refused unread. */
export const MAX_IPC_FILES_PER_RUN = 5_000;
/** Output files the host reads in any one second of a run; the rest of a burst is refused unread. */
export const MAX_IPC_FILES_PER_SECOND = 50;
/** fs.watch misses events on some file systems; this slow scan is the safety net, not the main path. */
export const IPC_FALLBACK_SCAN_MS = 1_500;

export type RunnerExitReason = Extract<OutputFile, { type: 'exit' }>;

export interface RunIpcDeps {
  /** `<dataDir>/ipc/<folder>`: the folder this run's files come from. It alone says which group wrote them. */
  runDir: string;
  group: Group;
  /** The run's own chat: where a send_message without `chat` goes. */
  chat: ChatAddress;
  store: Pick<Store, 'chats' | 'groups'>;
  audit(entry: AuditEntry): void;
  log: Logger;
  now(): number;
  /** Must not throw (errors are caught and logged). */
  onEvent(event: AgentEvent): void;
  /** The runner inside the container is up. */
  onReady?(protocolVersion: number): void;
  /** The runner says it is about to exit: the run takes no more prompts. */
  onRunnerExit?(exit: RunnerExitReason): void;
  /** The agent misbehaved (flooded the host with files, tampered with the folder); the caller should end the run. */
  onAbuse?(reason: string): void;
  /** Answers the task tools (schedule_task …); without it they are refused. */
  taskTools?: TaskTools;
  fallbackScanMs?: number;
  maxFilesPerRun?: number;
  maxFilesPerSecond?: number;
}

export interface RunIpc {
  /** Writes a prompt into input/. Returns false when the file could not be written. */
  writePrompt(batchId: string, text: string): boolean;
  /** Writes a task prompt whose pre-check the runner runs first (in the container). */
  writeTask(batchId: string, text: string, preCheck: PreCheck): boolean;
  writeStop(reason: string): boolean;
  /** Starts watching output/ (and scans once). */
  start(): void;
  /** Processes every file in output/ now; resolves once they are handled. Never rejects. */
  scan(): Promise<void>;
  /** Stops watching. A later scan() still works (for the last files after the container ended). */
  close(): void;
}

/** What a reader may say about one output file before it is parsed. */
type ReadResult = { ok: true; text: string } | { ok: false; error: string };

/** A request whose tool or arguments are invalid may still carry an id: it is answered, so the tool fails fast. */
const requestIdSchema = z.object({ type: z.literal('request'), id: z.string().min(1).max(128) });

/**
 * Creates `<runDir>/{input,output}` empty, removing whatever an earlier run left there. input/ is the host's
 * (the container only reads it); output/ belongs to the container's user, who writes it.
 */
export function prepareRunDirs(
  runDir: string,
  containerUser: { uid: number; gid: number },
): { inputDir: string; outputDir: string } {
  const inputDir = path.join(runDir, IPC_INPUT_DIR);
  const outputDir = path.join(runDir, IPC_OUTPUT_DIR);
  mkdirSync(runDir, { recursive: true });
  // rm does not follow symlinks: a link the agent left in place of a folder goes, not its target.
  rmSync(inputDir, { recursive: true, force: true });
  rmSync(outputDir, { recursive: true, force: true });
  // The run folder and input/ need only be traversable and readable by the container's user.
  chmodSync(runDir, 0o755);
  mkdirSync(inputDir, { mode: 0o755 });
  mkdirSync(outputDir, { mode: 0o700 });
  chmodSync(inputDir, 0o755);
  chmodSync(outputDir, 0o700);
  if (process.getuid?.() === 0) chownSync(outputDir, containerUser.uid, containerUser.gid);
  return { inputDir, outputDir };
}

/**
 * Reads one file the agent wrote. Never throws. Refuses symlinks (O_NOFOLLOW), anything but a regular file,
 * and files over the cap, without reading more than the cap whatever the file claims.
 */
export async function readOutputFile(filePath: string): Promise<ReadResult> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, error: code === 'ELOOP' ? 'symlink refused' : `cannot open (${code ?? error})` };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { ok: false, error: 'not a regular file' };
    if (stat.size > MAX_IPC_FILE_BYTES) return { ok: false, error: `file too large (${stat.size} bytes)` };
    // One byte more than stat said: a file that grows while it is read is refused, not cut.
    const buffer = Buffer.alloc(stat.size + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > stat.size) return { ok: false, error: 'file changed while being read' };
    return { ok: true, text: buffer.subarray(0, length).toString('utf8') };
  } catch (error) {
    return { ok: false, error: `cannot read (${String(error)})` };
  } finally {
    await handle.close().catch(() => {});
  }
}

export function createRunIpc(deps: RunIpcDeps): RunIpc {
  const log = deps.log.child({ module: 'ipc', group: deps.group.folder });
  const inputDir = path.join(deps.runDir, IPC_INPUT_DIR);
  const outputDir = path.join(deps.runDir, IPC_OUTPUT_DIR);
  const maxPerRun = deps.maxFilesPerRun ?? MAX_IPC_FILES_PER_RUN;
  const maxPerSecond = deps.maxFilesPerSecond ?? MAX_IPC_FILES_PER_SECOND;
  const actor = `agent:${deps.group.folder}`;
  /** Batches the host handed to this run: only these may be reported answered. */
  const sentBatchIds = new Set<string>();
  /** Names already handled: a file whose removal failed is never handled twice. */
  const seen = new Set<string>();
  const recentReads: number[] = [];
  let inputSequence = 0;
  let filesTaken = 0;
  let floodReason: string | null = null;
  let outputIdentity: { dev: number; ino: number } | null = null;
  let isTamperReported = false;
  let refusedInFlood = 0;
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let isRescanNeeded = false;

  function audit(action: string, decision: 'allow' | 'deny', detail: Record<string, unknown>): void {
    try {
      deps.audit({ groupFolder: deps.group.folder, actor, action, decision, detail });
    } catch (error) {
      log.error({ err: error, action }, 'audit failed');
    }
  }

  function emit(event: AgentEvent): void {
    try {
      deps.onEvent(event);
    } catch (error) {
      log.error({ err: error, event: event.type }, 'agent event handler threw');
    }
  }

  /** Input files are written whole under a temp name, then renamed: the runner sees all of a file or nothing. */
  function writeInput(file: InputFile): boolean {
    const encoded = encodeIpcFile('input', file);
    if (!encoded.ok) {
      log.error({ type: file.type, error: encoded.error }, 'refusing to write an invalid input file');
      return false;
    }
    inputSequence += 1;
    const name = ipcFileName(inputSequence, randomUUID());
    const temp = path.join(inputDir, `.tmp-${randomUUID()}`);
    try {
      // 0644: the container's user must read it; the data directory (0700) keeps other host users out.
      writeFileSync(temp, encoded.value, { flag: 'wx', mode: 0o644 });
      renameSync(temp, path.join(inputDir, name));
      return true;
    } catch (error) {
      rmSync(temp, { force: true });
      log.error({ err: error, type: file.type }, 'cannot write input file');
      return false;
    }
  }

  function answer(id: string, result: { ok: true; result?: string } | { ok: false; error: string }): void {
    writeInput({ type: 'response', id, ...result });
  }

  function reportAbuse(reason: string): void {
    try {
      deps.onAbuse?.(reason);
    } catch (error) {
      log.error({ err: error }, 'abuse handler threw');
    }
  }

  /**
   * output/ must still be the folder prepareRunDirs made. The container mounts it on its own (a mount point cannot
   * be renamed), so a swap for a symlink to a host folder should be impossible; if it happens anyway, nothing in
   * it is read or removed.
   */
  async function isOutputDirIntact(): Promise<boolean> {
    let stat: Awaited<ReturnType<typeof fs.lstat>>;
    try {
      stat = await fs.lstat(outputDir);
    } catch (error) {
      log.warn({ err: error }, 'cannot stat IPC output folder');
      return false;
    }
    outputIdentity ??= { dev: stat.dev, ino: stat.ino };
    if (stat.isDirectory() && stat.dev === outputIdentity.dev && stat.ino === outputIdentity.ino) return true;
    if (!isTamperReported) {
      isTamperReported = true;
      const reason = 'the IPC output folder was replaced';
      log.error({ outputDir }, 'IPC output folder replaced; refusing to read it');
      audit('ipc-folder', 'deny', { reason });
      reportAbuse(reason);
    }
    return false;
  }

  /** Counts a file against the caps. Returns the reason to refuse it unread, or null to read it. */
  function checkFlood(): string | null {
    if (floodReason) return floodReason;
    const now = deps.now();
    while (recentReads.length > 0 && (recentReads[0] as number) <= now - 1000) recentReads.shift();
    if (filesTaken >= maxPerRun) floodReason = `more than ${maxPerRun} IPC files in one run`;
    else if (recentReads.length >= maxPerSecond)
      floodReason = `more than ${maxPerSecond} IPC files in one second`;
    if (floodReason) {
      log.warn(
        { reason: floodReason },
        'agent is flooding the host with IPC files; refusing the rest of this run',
      );
      audit('ipc-flood', 'deny', { reason: floodReason });
      reportAbuse(floodReason);
      return floodReason;
    }
    filesTaken += 1;
    recentReads.push(now);
    return null;
  }

  function reject(name: string, error: string, text: string | null): void {
    log.warn({ file: name, error }, 'IPC file rejected');
    audit('ipc-file', 'deny', { file: name, reason: error });
    if (text === null) return;
    // Best effort: a request with a readable id gets its refusal now rather than a tool timeout.
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return;
    }
    const request = requestIdSchema.safeParse(value);
    if (request.success) answer(request.data.id, { ok: false, error: `invalid request: ${error}` });
  }

  async function handleName(name: string): Promise<void> {
    const filePath = path.join(outputDir, name);
    const flood = checkFlood();
    if (flood) {
      refusedInFlood += 1;
      return;
    }
    const read = await readOutputFile(filePath);
    if (!read.ok) {
      reject(name, read.error, null);
      return;
    }
    const parsed: IpcResult<OutputFile> = parseIpcFile('output', read.text);
    if (!parsed.ok) {
      reject(name, parsed.error, read.text);
      return;
    }
    handleFile(parsed.value, name);
  }

  function handleFile(file: OutputFile, name: string): void {
    switch (file.type) {
      case 'ready':
        if (file.protocolVersion !== IPC_PROTOCOL_VERSION) {
          log.warn(
            { theirs: file.protocolVersion, ours: IPC_PROTOCOL_VERSION },
            'agent image speaks another IPC protocol version; rebuild it with `warren image build`',
          );
        }
        log.debug({ file: name }, 'agent runner ready');
        deps.onReady?.(file.protocolVersion);
        return;
      case 'turn-end': {
        const batchIds = file.batchIds.filter((batchId) => sentBatchIds.has(batchId));
        if (batchIds.length < file.batchIds.length) {
          const unknown = file.batchIds.filter((batchId) => !sentBatchIds.has(batchId));
          log.warn({ file: name, unknown }, 'turn-end names batches this run was never given; ignored');
          audit('ipc-turn-end', 'deny', { file: name, reason: 'unknown batch ids', unknown });
        }
        emit({
          type: 'turn-end',
          id: `turn:${file.id}`,
          batchIds,
          result: file.result,
          sessionId: file.sessionId,
          isError: file.isError,
          ...(file.error === undefined ? {} : { error: file.error }),
        });
        return;
      }
      case 'log': {
        const fields = { file: name, agentMessage: file.message };
        if (file.level === 'error') log.error(fields, 'agent runner reported an error');
        else if (file.level === 'warn') log.warn(fields, 'agent runner warning');
        else log.info(fields, 'agent runner note');
        return;
      }
      case 'exit':
        log.debug({ reason: file.reason, error: file.error }, 'agent runner exiting');
        deps.onRunnerExit?.(file);
        return;
      case 'pre-check':
        // Only prompts this run was given: a check result for anything else is ignored (and audited).
        if (!sentBatchIds.has(file.batchId)) {
          log.warn(
            { file: name, batchId: file.batchId },
            'pre-check result for a batch this run was never given',
          );
          audit('ipc-pre-check', 'deny', { file: name, reason: 'unknown batch id' });
          return;
        }
        emit({
          type: 'pre-check',
          id: `pre-check:${file.batchId}`,
          batchId: file.batchId,
          outcome: file.outcome,
          ...(file.detail === undefined ? {} : { detail: file.detail }),
        });
        return;
      case 'request':
        if (file.tool === 'send_message') handleSendMessage(file);
        else handleTaskRequest(file);
        return;
    }
  }

  /** Task tools: the host's task service decides, for the group this folder belongs to. */
  function handleTaskRequest(request: TaskToolRequest): void {
    if (!deps.taskTools) {
      answer(request.id, { ok: false, error: 'scheduled tasks are not available in this host' });
      return;
    }
    const result = deps.taskTools.handle(request, { group: deps.group, chat: deps.chat });
    // Cut to the protocol's caps: a response the runner would refuse leaves the tool waiting for nothing.
    answer(
      request.id,
      result.ok
        ? { ok: true, result: result.result.slice(0, MAX_MESSAGE_CHARS) }
        : { ok: false, error: result.error.slice(0, MAX_SHORT_CHARS) },
    );
  }

  /** Authorized by the folder the file came from (deps.group), never by anything in the file. */
  function handleSendMessage(request: SendMessageRequest): void {
    const target = request.args.chat === undefined ? deps.chat : parseChatAddress(request.args.chat);
    const decision = authorizeSend(target);
    const detail = {
      requestId: request.id,
      chat: target ? formatChatAddress(target) : request.args.chat,
    };
    if (!decision.ok || !target) {
      const error = decision.ok ? 'invalid chat address' : decision.error;
      log.warn({ ...detail, reason: error }, 'send_message denied');
      audit('send-message', 'deny', { ...detail, reason: error });
      answer(request.id, { ok: false, error });
      return;
    }
    if (decision.isCrossChat) audit('send-message', 'allow', detail);
    emit({ type: 'agent-message', id: `request:${request.id}`, chat: target, text: request.args.text });
    answer(request.id, { ok: true });
  }

  function authorizeSend(
    target: ChatAddress | null,
  ): { ok: true; isCrossChat: boolean } | { ok: false; error: string } {
    if (!target) return { ok: false, error: 'invalid chat address' };
    if (target.channel === deps.chat.channel && target.chatId === deps.chat.chatId) {
      return { ok: true, isCrossChat: false };
    }
    // Read fresh: a group demoted (or removed) while its agent runs loses the privilege at once.
    const group = deps.store.groups.byFolder(deps.group.folder);
    if (!group?.isAdmin) {
      return { ok: false, error: 'this group may only send to its own chat' };
    }
    const chat = deps.store.chats.get(target.channel, target.chatId);
    if (chat?.groupId == null) {
      return { ok: false, error: `chat ${formatChatAddress(target)} is not registered to any group` };
    }
    return { ok: true, isCrossChat: true };
  }

  async function scanOnce(): Promise<void> {
    if (!(await isOutputDirIntact())) return;
    let names: string[];
    try {
      names = await fs.readdir(outputDir);
    } catch (error) {
      log.warn({ err: error }, 'cannot list IPC output folder');
      return;
    }
    for (const name of names.sort()) {
      if (seen.has(name)) continue;
      // Temp files are still being written; the rename that follows brings them back as real names.
      if (name.startsWith('.tmp-')) continue;
      seen.add(name);
      if (isIpcFileName(name)) await handleName(name);
      else reject(name, 'unexpected file name', null);
      await fs.rm(path.join(outputDir, name), { recursive: true, force: true }).catch((error: unknown) => {
        log.warn({ err: error, file: name }, 'cannot remove processed IPC file');
      });
    }
    if (refusedInFlood > 0) {
      log.warn({ refused: refusedInFlood, reason: floodReason }, 'IPC files refused unread');
      refusedInFlood = 0;
    }
  }

  function scan(): Promise<void> {
    if (running) {
      isRescanNeeded = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          isRescanNeeded = false;
          await scanOnce();
        } while (isRescanNeeded);
      } catch (error) {
        log.error({ err: error }, 'IPC scan failed');
      } finally {
        running = null;
      }
    })();
    return running;
  }

  try {
    const stat = lstatSync(outputDir);
    if (stat.isDirectory()) outputIdentity = { dev: stat.dev, ino: stat.ino };
  } catch {
    // Checked again (and reported) on the first scan.
  }

  return {
    writePrompt(batchId, text) {
      if (!writeInput({ type: 'prompt', batchId, text })) return false;
      sentBatchIds.add(batchId);
      return true;
    },
    writeTask(batchId, text, preCheck) {
      if (!writeInput({ type: 'task', batchId, text, preCheck })) return false;
      sentBatchIds.add(batchId);
      return true;
    },
    writeStop(reason) {
      return writeInput({ type: 'stop', reason: reason.slice(0, 1000) });
    },
    start() {
      try {
        watcher = watch(outputDir, { persistent: false }, () => void scan());
        watcher.on('error', (error) => {
          log.warn({ err: error }, 'IPC watch failed; relying on the fallback scan');
          watcher?.close();
          watcher = null;
        });
      } catch (error) {
        log.warn({ err: error }, 'cannot watch IPC output folder; relying on the fallback scan');
      }
      timer = setInterval(() => void scan(), deps.fallbackScanMs ?? IPC_FALLBACK_SCAN_MS);
      timer.unref();
      void scan();
    },
    scan,
    close() {
      watcher?.close();
      watcher = null;
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

/** Removes a finished run's files (prompts hold chat text that need not outlive the run). Never throws. */
export function clearRunDirs(runDir: string): void {
  for (const dir of [IPC_INPUT_DIR, IPC_OUTPUT_DIR]) {
    try {
      rmSync(path.join(runDir, dir), { recursive: true, force: true });
    } catch {
      // Left for the next run's prepareRunDirs.
    }
  }
}
