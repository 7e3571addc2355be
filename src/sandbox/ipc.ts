// The host side of one run's file IPC: writes input/ files; parses, authorizes and answers what the agent writes to
// output/. Reading output/ safely (links, caps, flood control) is ipc-folder.ts's.
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
import { parseJson, writeAtomic } from '../protocol/read.js';
import { type ChatAddress, formatChatAddress, type Group, parseChatAddress } from '../store/records.js';
import type { Store } from '../store/store.js';
import type { AgentEvent, HostContext, PreCheck } from '../types.js';
import { createOutputWatcher, type OutputWatcherDeps } from './ipc-folder.js';
import { stageOutgoingFile } from './safe-fs.js';

export type RunnerExitReason = Extract<OutputFile, { type: 'exit' }>;

/** Without taskTools and memoryProposals, task tools and update_global_memory are refused. */
export interface RunIpcDeps
  extends Pick<HostContext, 'audit' | 'now' | 'taskTools' | 'memoryProposals'>,
    Pick<OutputWatcherDeps, 'fallbackScanMs' | 'maxFilesPerRun' | 'maxFilesPerSecond'> {
  /** `<dataDir>/ipc/<folder>`: the folder this run's files come from. It alone says which group wrote them. */
  runDir: string;
  group: Group;
  /** Where a send_message without `chat` goes. */
  chat: ChatAddress;
  store: Pick<Store, 'chats' | 'groups'>;
  log: Logger;
  onEvent(event: AgentEvent): void;
  onReady?(protocolVersion: number): void;
  /** The runner is about to exit: the run takes no more prompts. */
  onRunnerExit?(exit: RunnerExitReason): void;
  /** The agent misbehaved (flooded the host with files): the caller should end the run. */
  onAbuse?(reason: string): void;
}

/** The run's side of the IPC folder: input/ written, output/ watched (start, scan, close: protocol/read.ts). */
export type RunIpc = ReturnType<typeof createRunIpc>;

/** A request whose tool or arguments are invalid may still carry an id: it is answered, so the tool fails fast. */
const requestIdSchema = z.object({ type: z.literal('request'), id: z.string().min(1).max(128) });

export function createRunIpc(deps: RunIpcDeps) {
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

  /** Written whole under a temp name, then renamed: the runner sees all of a file or nothing. */
  function writeInput(file: InputFile): boolean {
    const encoded = encodeIpcFile('input', file);
    try {
      if (!encoded.ok) throw new Error(`refusing to write an invalid input file: ${encoded.error}`);
      writeAtomic(inputDir, ipcFileName(++inputSequence, randomUUID()), encoded.value);
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

  /** Only batches this run was given count: any other the agent names is forged, refused and audited. */
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
        return deps.onReady?.(file.protocolVersion);
      case 'turn-end':
        // Forged: nothing of it counts (its reply is not delivered, its session id not stored).
        if (!isGiven(file.batchIds, name, 'ipc-turn-end')) return;
        // Answered once: a second turn-end naming the same batch is refused like any other forgery.
        for (const batchId of file.batchIds) sentBatchIds.delete(batchId);
        // The schema let through only the fields of the event.
        return emit({ ...file, id: `turn:${file.id}` });
      case 'log':
        return log[file.level]({ file: name, agentMessage: file.message }, `agent runner ${file.level}`);
      case 'exit':
        log.debug({ reason: file.reason, error: file.error }, 'agent runner exiting');
        return deps.onRunnerExit?.(file);
      case 'pre-check':
        if (!isGiven([file.batchId], name, 'ipc-pre-check')) return;
        return emit({ ...file, id: `pre-check:${file.batchId}` });
      case 'request': {
        if (file.tool === 'send_message' || file.tool === 'send_file') return handleSend(file);
        // Decided for the group this folder belongs to; a global memory change waits for the owner's yes.
        const isMemory = file.tool === 'update_global_memory';
        const answered = isMemory
          ? deps.memoryProposals?.propose(deps.group, file.args.content)
          : deps.taskTools?.handle(file, { group: deps.group, chat: deps.chat });
        const refusal = `${isMemory ? 'global memory changes' : 'scheduled tasks'} are not available in this host`;
        return answer(file.id, (await answered) ?? { ok: false, error: refusal });
      }
    }
  }

  // Authorized by the folder the file came from (deps.group), never by anything in the file. A file to send must
  // lie in the group's own folder, reached without following a link: the host reads and sends nothing else.
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
    const isOwnChat = target.channel === deps.chat.channel && target.chatId === deps.chat.chatId;
    if (!isOwnChat) {
      // Read fresh: a group demoted (or removed) while its agent runs loses the privilege at once.
      if (!deps.store.groups.byFolder(deps.group.folder)?.isAdmin)
        return refuse('this group may only send to its own chat');
      if (deps.store.chats.get(target.channel, target.chatId)?.groupId == null)
        return refuse(`chat ${formatChatAddress(target)} is not registered to any group`);
    }
    const base = { id: `request:${request.id}`, chat: target };
    let event: AgentEvent;
    if (request.tool === 'send_file') {
      const staged = await stageOutgoingFile(groupDir, request.args.path, outgoingDir);
      if (!staged.ok) return refuse(staged.reason);
      event = { ...base, type: 'agent-file', path: staged.path, caption: request.args.caption ?? '' };
    } else {
      event = { ...base, type: 'agent-message', text: request.args.text };
    }
    if (!isOwnChat) audit(action, 'allow', detail);
    emit(event);
    answer(request.id, { ok: true });
  }

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
      // Read whole (or refused unread), then parsed at the trust boundary. Never rejects.
      async onFile(name, read) {
        const parsed = read.ok ? parseIpcFile('output', read.text) : read;
        if (!parsed.ok) return reject(name, parsed.error, read.ok ? read.text : null);
        await handleFile(parsed.value, name).catch((error: unknown) =>
          log.error({ err: error, file: name }, 'IPC file handler failed'),
        );
      },
      onFlood(reason) {
        log.warn({ reason }, 'agent is flooding the host with IPC files; refusing the rest of this run');
        audit('ipc-flood', 'deny', { reason });
        safely('abuse handler', () => deps.onAbuse?.(reason));
      },
    }),
    writePrompt: (batchId: string, text: string) => writeBatch({ type: 'prompt', batchId, text }),
    /** A task prompt whose pre-check the runner runs first (in the container). */
    writeTask: (batchId: string, text: string, preCheck: PreCheck) =>
      writeBatch({ type: 'task', batchId, text, preCheck }),
    writeStop: (reason: string) => writeInput({ type: 'stop', reason: reason.slice(0, 1000) }),
  };
}
