// The host side of one run's file IPC: writes input/ files; parses, authorizes and answers what the agent writes to output/.
// Reading output/ safely (symlinks, caps, flood control, watching) is ipc-folder.ts's.
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import {
  encodeIpcFile,
  type InputFile,
  IPC_INPUT_DIR,
  IPC_OUTPUT_DIR,
  IPC_PROTOCOL_VERSION,
  ipcFileName,
  MAX_MESSAGE_CHARS,
  MAX_SHORT_CHARS,
  type OutputFile,
  parseIpcFile,
  type SendFileRequest,
  type SendMessageRequest,
} from '../protocol/ipc.js';
import { type FolderWatch, parseJson } from '../protocol/read.js';
import { writeAtomic } from '../protocol/write.js';
import type { ChatAddress, Group } from '../store/records.js';
import { formatChatAddress, parseChatAddress } from '../store/records.js';
import type { AuditEntry, Store } from '../store/store.js';
import type { AgentEvent, MemoryProposer, PreCheck, TaskTools } from '../types.js';
import { createOutputWatcher, type OutputWatcherDeps } from './ipc-folder.js';
import { stageOutgoingFile } from './safe-fs.js';

export type RunnerExitReason = Extract<OutputFile, { type: 'exit' }>;

export interface RunIpcDeps
  extends Pick<OutputWatcherDeps, 'now' | 'fallbackScanMs' | 'maxFilesPerRun' | 'maxFilesPerSecond'> {
  /** `<dataDir>/ipc/<folder>`: the folder this run's files come from. It alone says which group wrote them. */
  runDir: string;
  group: Group;
  /** The run's own chat: where a send_message without `chat` goes. */
  chat: ChatAddress;
  store: Pick<Store, 'chats' | 'groups'>;
  audit(entry: AuditEntry): void;
  log: Logger;
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
}

/** The run's side of the IPC folder: input/ written, output/ watched (start, scan, close: protocol/read.ts). */
export interface RunIpc extends FolderWatch {
  /** Writes a prompt into input/. Returns false when the file could not be written. */
  writePrompt(batchId: string, text: string): boolean;
  /** Writes a task prompt whose pre-check the runner runs first (in the container). */
  writeTask(batchId: string, text: string, preCheck: PreCheck): boolean;
  writeStop(reason: string): boolean;
}

/** Largest file an agent may send. */
const MAX_OUTGOING_BYTES = 50 * 1024 * 1024;

/** A request whose tool or arguments are invalid may still carry an id: it is answered, so the tool fails fast. */
const requestIdSchema = z.object({ type: z.literal('request'), id: z.string().min(1).max(128) });

export function createRunIpc(deps: RunIpcDeps): RunIpc {
  const log = deps.log.child({ module: 'ipc', group: deps.group.folder });
  const inputDir = path.join(deps.runDir, IPC_INPUT_DIR);
  // runDir is <dataDir>/ipc/<folder>: the data directory is two levels up.
  const dataDir = path.resolve(deps.runDir, '..', '..');
  const groupDir = path.join(dataDir, 'groups', deps.group.folder);
  const outgoingDir = path.join(dataDir, 'outgoing');
  const actor = `agent:${deps.group.folder}`;
  /** Batches the host handed to this run: only these may be reported answered. */
  const sentBatchIds = new Set<string>();
  let inputSequence = 0;

  /** Calls back into the host; an error there is logged, never thrown into the handling of the agent's files. */
  function safely(what: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      log.error({ err: error }, `${what} threw`);
    }
  }
  const audit = (action: string, decision: 'allow' | 'deny', detail: Record<string, unknown>) =>
    safely('audit', () => deps.audit({ groupFolder: deps.group.folder, actor, action, decision, detail }));
  const emit = (event: AgentEvent) => safely('agent event handler', () => deps.onEvent(event));

  /** Input files are written whole under a temp name, then renamed: the runner sees all of a file or nothing. */
  function writeInput(file: InputFile): boolean {
    const encoded = encodeIpcFile('input', file);
    if (!encoded.ok) {
      log.error({ type: file.type, error: encoded.error }, 'refusing to write an invalid input file');
      return false;
    }
    inputSequence += 1;
    try {
      writeAtomic(inputDir, ipcFileName(inputSequence, randomUUID()), encoded.value);
      return true;
    } catch (error) {
      log.error({ err: error, type: file.type }, 'cannot write input file');
      return false;
    }
  }

  /** Cut to the protocol's caps: a response the runner would refuse leaves the tool waiting for nothing. */
  function answer(id: string, result: { ok: true; result?: string } | { ok: false; error: string }): void {
    writeInput(
      result.ok
        ? { type: 'response', id, ok: true, result: result.result?.slice(0, MAX_MESSAGE_CHARS) }
        : { type: 'response', id, ok: false, error: result.error.slice(0, MAX_SHORT_CHARS) },
    );
  }

  function reject(name: string, error: string, text: string | null): void {
    log.warn({ file: name, error }, 'IPC file rejected');
    audit('ipc-file', 'deny', { file: name, reason: error });
    // Best effort: a request with a readable id gets its refusal now rather than a tool timeout.
    const request = requestIdSchema.safeParse(text === null ? null : parseJson(text));
    if (request.success) answer(request.data.id, { ok: false, error: `invalid request: ${error}` });
  }

  /** A file read whole from output/: parsed at the trust boundary, then handled. Never rejects. */
  async function handleText(name: string, text: string): Promise<void> {
    const parsed = parseIpcFile('output', text);
    if (!parsed.ok) return reject(name, parsed.error, text);
    await handleFile(parsed.value, name).catch((error: unknown) =>
      log.error({ err: error, file: name }, 'IPC file handler failed'),
    );
  }

  /** Only batches this run was given count: anything else the agent names is forged, refused and audited. */
  function isGiven(batchIds: string[], name: string, action: string): boolean {
    const unknown = batchIds.filter((batchId) => !sentBatchIds.has(batchId));
    if (unknown.length === 0) return true;
    log.warn({ file: name, unknown }, `${action} names batches this run was never given; refused`);
    audit(action, 'deny', { file: name, reason: 'unknown batch ids', unknown });
    return false;
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
      case 'turn-end':
        // A turn-end naming a batch this run never got is forged, and nothing of it counts (its reply is not
        // delivered, its session id not stored).
        if (!isGiven(file.batchIds, name, 'ipc-turn-end')) return;
        // Answered once: a second turn-end naming the same batch is refused like any other forgery.
        for (const batchId of file.batchIds) sentBatchIds.delete(batchId);
        // The schema let through only the fields of the event.
        emit({ ...file, id: `turn:${file.id}` });
        return;
      case 'log':
        log[file.level]({ file: name, agentMessage: file.message }, `agent runner ${file.level}`);
        return;
      case 'exit':
        log.debug({ reason: file.reason, error: file.error }, 'agent runner exiting');
        deps.onRunnerExit?.(file);
        return;
      case 'pre-check':
        if (!isGiven([file.batchId], name, 'ipc-pre-check')) return;
        emit({ ...file, id: `pre-check:${file.batchId}` });
        return;
      case 'request': {
        if (file.tool === 'send_message' || file.tool === 'send_file') return handleSend(file);
        // Decided for the group this folder belongs to; a global memory change waits for the owner's yes.
        const answered =
          file.tool === 'update_global_memory'
            ? deps.memoryProposals?.propose(deps.group, file.args.content)
            : deps.taskTools?.handle(file, { group: deps.group, chat: deps.chat });
        const what = file.tool === 'update_global_memory' ? 'global memory changes' : 'scheduled tasks';
        answer(file.id, (await answered) ?? { ok: false, error: `${what} are not available in this host` });
        return;
      }
    }
  }

  /**
   * send_message and send_file, authorized by the folder the file came from (deps.group), never by anything in the
   * file. A file must lie inside this group's own folder, reached without following any link, so an agent can never
   * make the host read and send anything else.
   */
  async function handleSend(request: SendMessageRequest | SendFileRequest): Promise<void> {
    const action = request.tool === 'send_file' ? 'send-file' : 'send-message';
    const target = request.args.chat === undefined ? deps.chat : parseChatAddress(request.args.chat);
    const detail = {
      requestId: request.id,
      chat: target ? formatChatAddress(target) : request.args.chat,
      ...(request.tool === 'send_file' ? { path: request.args.path } : {}),
    };
    const refuse = (error: string) => {
      log.warn({ ...detail, reason: error }, `${action} denied`);
      audit(action, 'deny', { ...detail, reason: error });
      answer(request.id, { ok: false, error });
    };
    if (!target) return refuse('invalid chat address');
    const refusal = sendRefusal(target);
    if (refusal) return refuse(refusal);
    const id = `request:${request.id}`;
    let event: AgentEvent;
    if (request.tool === 'send_file') {
      const staged = await stageOutgoingFile(groupDir, request.args.path, outgoingDir, MAX_OUTGOING_BYTES);
      if (!staged.ok) return refuse(staged.reason);
      event = {
        type: 'agent-file',
        id,
        chat: target,
        path: staged.path,
        caption: request.args.caption ?? '',
      };
    } else {
      event = { type: 'agent-message', id, chat: target, text: request.args.text };
    }
    if (!isOwnChat(target)) audit(action, 'allow', detail);
    emit(event);
    answer(request.id, { ok: true });
  }

  const isOwnChat = (chat: ChatAddress) =>
    chat.channel === deps.chat.channel && chat.chatId === deps.chat.chatId;

  /** Why this run may not send to the chat, or null: its own chat, or (the admin group's) a registered one. */
  function sendRefusal(target: ChatAddress): string | null {
    if (isOwnChat(target)) return null;
    // Read fresh: a group demoted (or removed) while its agent runs loses the privilege at once.
    if (!deps.store.groups.byFolder(deps.group.folder)?.isAdmin)
      return 'this group may only send to its own chat';
    if (deps.store.chats.get(target.channel, target.chatId)?.groupId == null) {
      return `chat ${formatChatAddress(target)} is not registered to any group`;
    }
    return null;
  }

  /** A prompt handed to this run: from now on the runner may report it answered. */
  function writeBatch(file: Extract<InputFile, { type: 'prompt' | 'task' }>): boolean {
    if (!writeInput(file)) return false;
    sentBatchIds.add(file.batchId);
    return true;
  }

  return {
    ...createOutputWatcher({
      ...deps,
      outputDir: path.join(deps.runDir, IPC_OUTPUT_DIR),
      log,
      onFile: (name, read) => (read.ok ? handleText(name, read.text) : reject(name, read.error, null)),
      onFlood(reason) {
        log.warn({ reason }, 'agent is flooding the host with IPC files; refusing the rest of this run');
        audit('ipc-flood', 'deny', { reason });
        safely('abuse handler', () => deps.onAbuse?.(reason));
      },
    }),
    writePrompt: (batchId, text) => writeBatch({ type: 'prompt', batchId, text }),
    writeTask: (batchId, text, preCheck) => writeBatch({ type: 'task', batchId, text, preCheck }),
    writeStop: (reason) => writeInput({ type: 'stop', reason: reason.slice(0, 1000) }),
  };
}
