// The host side of one run's file IPC: writes input/ files; parses, authorizes and answers what the agent writes to output/.
// Reading output/ safely (symlinks, caps, flood control, watching) is ipc-folder.ts's.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import type { Logger } from '../log.js';
import {
  encodeIpcFile,
  type InputFile,
  IPC_INPUT_DIR,
  IPC_OUTPUT_DIR,
  IPC_PROTOCOL_VERSION,
  type IpcResult,
  ipcFileName,
  MAX_MESSAGE_CHARS,
  MAX_SHORT_CHARS,
  type OutputFile,
  parseIpcFile,
  type SendFileRequest,
  type SendMessageRequest,
  type TaskToolRequest,
  type UpdateGlobalMemoryRequest,
} from '../protocol/ipc.js';
import type { ChatAddress, Group } from '../store/records.js';
import { formatChatAddress, parseChatAddress } from '../store/records.js';
import type { AuditEntry, Store } from '../store/store.js';
import type { AgentEvent, MemoryProposer, PreCheck, TaskTools } from '../types.js';
import { createOutputWatcher } from './ipc-folder.js';
import { closeQuietly, describeOpenError, openDirectory, openFileAt } from './safe-fs.js';

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
  /** Holds update_global_memory proposals for the owner's approval; without it they are refused. */
  memoryProposals?: MemoryProposer;
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

/** A request whose tool or arguments are invalid may still carry an id: it is answered, so the tool fails fast. */
const requestIdSchema = z.object({ type: z.literal('request'), id: z.string().min(1).max(128) });

export function createRunIpc(deps: RunIpcDeps): RunIpc {
  const log = deps.log.child({ module: 'ipc', group: deps.group.folder });
  const inputDir = path.join(deps.runDir, IPC_INPUT_DIR);
  const outputDir = path.join(deps.runDir, IPC_OUTPUT_DIR);
  const actor = `agent:${deps.group.folder}`;
  /** Batches the host handed to this run: only these may be reported answered. */
  const sentBatchIds = new Set<string>();
  let inputSequence = 0;

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

  /** A file read whole from output/: parsed at the trust boundary, then handled. Never rejects. */
  async function handleText(name: string, text: string): Promise<void> {
    const parsed: IpcResult<OutputFile> = parseIpcFile('output', text);
    if (!parsed.ok) {
      reject(name, parsed.error, text);
      return;
    }
    try {
      await handleFile(parsed.value, name);
    } catch (error) {
      log.error({ err: error, file: name }, 'IPC file handler failed');
    }
  }

  async function handleFile(file: OutputFile, name: string): Promise<void> {
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
        // A runner only ever names prompts this run gave it: a turn-end naming any other is forged, and nothing
        // of it counts (its reply is not delivered, its session id not stored).
        const unknown = file.batchIds.filter((batchId) => !sentBatchIds.has(batchId));
        if (unknown.length > 0) {
          log.warn({ file: name, unknown }, 'turn-end names batches this run was never given; refused');
          audit('ipc-turn-end', 'deny', { file: name, reason: 'unknown batch ids', unknown });
          return;
        }
        // Answered once: a second turn-end naming the same batch is refused like any other forgery.
        for (const batchId of file.batchIds) sentBatchIds.delete(batchId);
        emit({
          type: 'turn-end',
          id: `turn:${file.id}`,
          batchIds: file.batchIds,
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
        else if (file.tool === 'send_file') await handleSendFile(file);
        else if (file.tool === 'update_global_memory') await handleGlobalMemory(file);
        else handleTaskRequest(file);
        return;
    }
  }

  /** A proposed global memory text, for the group this folder belongs to; nothing is written before the owner approves. */
  async function handleGlobalMemory(request: UpdateGlobalMemoryRequest): Promise<void> {
    if (!deps.memoryProposals) {
      answer(request.id, { ok: false, error: 'global memory changes are not available in this host' });
      return;
    }
    const result = await deps.memoryProposals.propose(deps.group, request.args.content);
    answer(
      request.id,
      result.ok
        ? { ok: true, result: result.result.slice(0, MAX_MESSAGE_CHARS) }
        : { ok: false, error: result.error.slice(0, MAX_SHORT_CHARS) },
    );
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
    const target = targetOf(request.args.chat);
    const decision = authorizeSend(target);
    const detail = { requestId: request.id, chat: target ? formatChatAddress(target) : request.args.chat };
    if (!decision.ok || !target) {
      refuse('send-message', request.id, detail, decision.ok ? 'invalid chat address' : decision.error);
      return;
    }
    if (decision.isCrossChat) audit('send-message', 'allow', detail);
    emit({ type: 'agent-message', id: `request:${request.id}`, chat: target, text: request.args.text });
    answer(request.id, { ok: true });
  }

  /**
   * send_file: the chat is authorized as for send_message; the file must lie inside this group's own folder, reached
   * without following any link, so an agent can never make the host read and send anything else.
   */
  async function handleSendFile(request: SendFileRequest): Promise<void> {
    const target = targetOf(request.args.chat);
    const decision = authorizeSend(target);
    const detail = {
      requestId: request.id,
      chat: target ? formatChatAddress(target) : request.args.chat,
      path: request.args.path,
    };
    if (!decision.ok || !target) {
      refuse('send-file', request.id, detail, decision.ok ? 'invalid chat address' : decision.error);
      return;
    }
    // runDir is <dataDir>/ipc/<folder>: the data directory is two levels up.
    const dataDir = path.resolve(deps.runDir, '..', '..');
    const staged = await stageOutgoingFile(
      path.join(dataDir, 'groups', deps.group.folder),
      request.args.path,
      path.join(dataDir, 'outgoing'),
    );
    if (staged.status === 'failed') {
      refuse('send-file', request.id, detail, staged.reason);
      return;
    }
    if (decision.isCrossChat) audit('send-file', 'allow', detail);
    emit({
      type: 'agent-file',
      id: `request:${request.id}`,
      chat: target,
      path: staged.path,
      caption: request.args.caption ?? '',
    });
    answer(request.id, { ok: true });
  }

  /** The chat a send request names, or the run's own chat when it names none; null when it does not parse. */
  function targetOf(chat: string | undefined): ChatAddress | null {
    return chat === undefined ? deps.chat : parseChatAddress(chat);
  }

  /** A refused send: logged, audited, and the tool is told why. */
  function refuse(action: string, requestId: string, detail: Record<string, unknown>, error: string): void {
    log.warn({ ...detail, reason: error }, `${action} denied`);
    audit(action, 'deny', { ...detail, reason: error });
    answer(requestId, { ok: false, error });
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

  const output = createOutputWatcher({
    outputDir,
    log,
    now: deps.now,
    audit,
    reportAbuse,
    onFile: handleText,
    onRejected: (name, error) => reject(name, error, null),
    fallbackScanMs: deps.fallbackScanMs,
    maxFilesPerRun: deps.maxFilesPerRun,
    maxFilesPerSecond: deps.maxFilesPerSecond,
  });

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
    start: output.start,
    scan: output.scan,
    close: output.close,
  };
}

/** Largest file an agent may send. */
const MAX_OUTGOING_FILE_BYTES = 50 * 1024 * 1024;

/**
 * Copies a file the agent asked to send into a host-only folder; delivery later reads only the copy, which no
 * container can reach. The path is walked from the group folder's descriptor one component at a time (safe-fs.ts):
 * '..', links anywhere on the way and anything but a regular file are refused, a FIFO cannot stall the open, and the
 * copy itself is asynchronous, so no file of the agent's can hold up the host.
 */
async function stageOutgoingFile(
  groupDir: string,
  relativePath: string,
  stagingDir: string,
): Promise<{ status: 'ok'; path: string } | { status: 'failed'; reason: string }> {
  let rootFd: number | null = null;
  let sourceFd: number | null = null;
  try {
    rootFd = openDirectory(groupDir);
    const source = openFileAt(rootFd, relativePath);
    sourceFd = source.fd;
    if (source.stat.size > MAX_OUTGOING_FILE_BYTES) {
      return { status: 'failed', reason: 'the file is larger than 50 MB' };
    }
    mkdirSync(stagingDir, { recursive: true, mode: 0o700 });
    const staged = path.join(stagingDir, `${randomUUID()}-${path.basename(relativePath)}`);
    await pipeline(
      // end is inclusive: a file that grows while it is copied is cut at the cap, never read without end.
      createReadStream('', { fd: sourceFd, autoClose: false, end: MAX_OUTGOING_FILE_BYTES - 1 }),
      createWriteStream(staged, { flags: 'wx', mode: 0o600 }),
    );
    return { status: 'ok', path: staged };
  } catch (error) {
    return { status: 'failed', reason: describeOpenError(error, "no such file in this group's folder") };
  } finally {
    closeQuietly(sourceFd);
    closeQuietly(rootFd);
  }
}
