// The host side of one run's file IPC: writes input/ files; parses, authorizes and answers what the agent writes to output/.
// Reading output/ safely (symlinks, caps, flood control, watching) is ipc-folder.ts's.
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { outgoingFileError, resolveGroupFile } from './channels/media.js';
import { formatChatAddress, parseChatAddress } from './groups.js';
import { createOutputWatcher } from './ipc-folder.js';
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
} from './ipc-protocol.js';
import type { Logger } from './log.js';
import type { AuditEntry, Store } from './store.js';
import type { TaskTools } from './task-requests.js';
import type { AgentEvent, ChatAddress, Group, PreCheck } from './types.js';

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

  /** A file read whole from output/: parsed at the trust boundary, then handled. */
  function handleText(name: string, text: string): void {
    const parsed: IpcResult<OutputFile> = parseIpcFile('output', text);
    if (!parsed.ok) {
      reject(name, parsed.error, text);
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
        else if (file.tool === 'send_file') handleSendFile(file);
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
   * send_file: the chat is authorized as for send_message; the file must lie inside this group's own folder
   * (resolved through symlinks), so an agent can never make the host read and send another group's files.
   */
  function handleSendFile(request: SendFileRequest): void {
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
    const hostPath = resolveGroupFile(dataDir, deps.group.folder, request.args.path);
    const staged =
      hostPath === null
        ? {
            status: 'failed' as const,
            reason: "the file must be inside this group's folder (/workspace/group)",
          }
        : stageOutgoingFile(
            hostPath,
            path.join(dataDir, 'groups', deps.group.folder),
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
 * Copies a file the agent asked to send into a host-only folder, race-free: the file is opened without following
 * a final symlink, and the opened descriptor's real path (from /proc) must still lie inside the group's folder, so
 * swapping a folder for a symlink after the check cannot make the host read another group's (or its own) files.
 * Delivery later reads only the copy, which no container can reach.
 */
function stageOutgoingFile(
  hostPath: string,
  groupDir: string,
  stagingDir: string,
): { status: 'ok'; path: string } | { status: 'failed'; reason: string } {
  let fd: number | null = null;
  try {
    fd = openSync(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { status: 'failed', reason: 'not a regular file' };
    if (stat.size > MAX_OUTGOING_FILE_BYTES)
      return { status: 'failed', reason: 'the file is larger than 50 MB' };
    const opened = readlinkSync(`/proc/self/fd/${fd}`);
    const realGroup = realpathSync(groupDir);
    if (!opened.startsWith(`${realGroup}${path.sep}`)) {
      return { status: 'failed', reason: "the file must be inside this group's folder (/workspace/group)" };
    }
    mkdirSync(stagingDir, { recursive: true, mode: 0o700 });
    const staged = path.join(stagingDir, `${randomUUID()}-${path.basename(hostPath)}`);
    writeFileSync(staged, readFileSync(fd), { mode: 0o600, flag: 'wx' });
    return { status: 'ok', path: staged };
  } catch (error) {
    return { status: 'failed', reason: outgoingFileError(error, "no such file in this group's folder") };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
