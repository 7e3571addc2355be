// Cross-module contracts: what channels, the router, the group queue and agent runners promise each other.

import type { TaskToolRequest } from './protocol/ipc.js';
import type { ChannelState, ChatAddress, Group } from './store/records.js';
import type { AuditEntry, Store } from './store/store.js';
/** One message as a channel adapter hands it to the host. */
export interface InboundMessage {
  channel: string;
  chatId: string;
  /** The channel's own id for this message. (channel, chatId, externalId) is unique: a redelivery is ignored. */
  externalId: string;
  senderId: string;
  senderName: string;
  text: string;
  /** When the channel says the message was sent, in ms since the epoch. */
  sentAt: number;
  /** A one-to-one chat with the bot (as opposed to a group chat). */
  isDirect: boolean;
  /** The channel itself says the bot was mentioned (e.g. an @username entity); name matching is the router's job. */
  isMention?: boolean;
  /** Human name of the chat, when the channel knows it. */
  chatName?: string;
  /** The service's thread the message was written in (Slack's thread_ts); the batch's reply goes there. */
  threadId?: string;
}

/** One reply for a channel to deliver. */
export interface OutboundMessage {
  chatId: string;
  text: string;
  /**
   * Stable for one logical reply across retries. An adapter whose service can deduplicate uses it, so a send
   * that is retried after an ambiguous failure never shows twice.
   */
  idempotencyKey: string;
  /** The thread to reply in (an InboundMessage's threadId); absent: the chat itself. Channels without threads ignore it. */
  threadId?: string;
}

export type SendResult =
  | { status: 'sent'; externalId?: string }
  /** isRetryable false means retrying can never succeed (chat gone, bot blocked): the outbox gives up at once. */
  | { status: 'failed'; reason: string; isRetryable: boolean };

export interface ChannelHandlers {
  /** Called once per inbound message. Must not throw; the host stores the message before it returns. */
  onMessage(message: InboundMessage): void;
  /** A connection state change worth showing in `warren status` (connected, reconnecting, logged out …). */
  onStateChange?(state: ChannelState): void;
  /** Something happened to a chat that is not a message (the bot was added to a group). Must not throw. */
  onChatEvent?(event: ChatEvent): void;
}

export type ChatEvent = ChatJoinedEvent | ChatMovedEvent;

/** The bot was added to a chat. */
export type ChatJoinedEvent = {
  type: 'chat-joined';
  channel: string;
  chatId: string;
  chatName?: string;
  isDirect: boolean;
  /** Who added the bot, as the channel names them. */
  byName?: string;
};

/** The service gave a chat a new id (a Telegram group upgraded to a supergroup); it is the same chat. */
export type ChatMovedEvent = { type: 'chat-moved'; channel: string; fromChatId: string; toChatId: string };

/**
 * A chat service adapter. Built by a factory that returns null when the channel is not configured.
 * connect() resolves once messages can flow; send() never throws for service errors (it returns 'failed').
 */
export interface Channel {
  readonly name: string;
  connect(handlers: ChannelHandlers): Promise<void>;
  send(message: OutboundMessage): Promise<SendResult>;
  /** Stops receiving; resolves when the adapter holds no more connections or timers. */
  disconnect(): Promise<void>;
  setTyping?(chatId: string, isTyping: boolean): Promise<void>;
  /**
   * Sends a file from the host (a path the caller has already checked, e.g. with media.ts's openOutgoingFile),
   * as a photo when it is an image the service shows inline, else as a document. Never throws.
   */
  sendFile?(chatId: string, filePath: string, caption?: string): Promise<SendResult>;
  /** The longest text one message may carry; longer texts are split by the adapter. Absent: no limit. */
  readonly maxTextLength?: number;
}

/** Everything an agent runner needs to start one agent for one group. */
export interface AgentStartRequest {
  runId: string;
  group: Group;
  /** Where the run's replies go by default. */
  chat: ChatAddress;
  prompt: string;
  /** The batch the first prompt carries; turn-end reports it back. */
  batchId: string;
  /** A scheduled task's check that runs in the container before the model sees the first prompt. */
  preCheck?: PreCheck;
  /** The group's stored agent session to resume, or null for a fresh one. */
  sessionId: string | null;
  /** Receives what the agent does. Must not throw. */
  onEvent(event: AgentEvent): void;
}

export type AgentEvent =
  /** A message the agent sends before its turn ends (send_message tool). chat is already authorized. */
  | { type: 'agent-message'; id: string; chat: ChatAddress; text: string }
  /** A file from the group's folder the agent sends (send_file tool). path is a host path already checked. */
  | { type: 'agent-file'; id: string; chat: ChatAddress; path: string; caption: string }
  /**
   * The agent finished answering. batchIds are the prompts it had taken in by then; result is the final
   * answer to deliver (null when the agent chose to stay silent or already answered with send_message).
   */
  | {
      type: 'turn-end';
      id: string;
      batchIds: string[];
      result: string | null;
      sessionId: string | null;
      isError: boolean;
      error?: string;
      /** false when trying again cannot help (budget spent): the batch fails at once. */
      isRetryable?: boolean;
      /** The chat already heard why (the budget notice): no failure notice follows. */
      isTold?: boolean;
    }
  /** Something the chat should hear about that is not an answer (budget exhausted, …). */
  | { type: 'agent-notice'; id: string; text: string }
  /**
   * A task's pre-check finished in the container. 'run': the model now takes the prompt (with the check's data);
   * 'skip' and 'error' end the batch without any model call (no turn-end follows for it).
   */
  | { type: 'pre-check'; id: string; batchId: string; outcome: 'run' | 'skip' | 'error'; detail?: string };

/**
 * A short script a scheduled task runs inside the group's container before waking the model. It prints a JSON
 * decision ({"run": false} or {"run": true, "data": …}); see docs/IPC.md.
 */
export interface PreCheck {
  script: string;
  timeoutMs: number;
}

/** isRetryable false: running the same work again would end the same way (the run ceiling, a full disk quota). */
export type AgentExit =
  | { status: 'exited'; reason: string }
  | { status: 'crashed'; reason: string; isRetryable?: false };

/** A running agent for one group. */
export interface AgentSession {
  /**
   * Hands a follow-up prompt to the running agent. Returns false when the agent can take no more input
   * (it is shutting down); the caller then waits for exit and starts a new run.
   */
  sendFollowUp(prompt: string, batchId: string, options?: { preCheck?: PreCheck }): boolean;
  /** Asks the agent to stop and resolves once it has exited. Safe to call more than once. */
  stop(reason: string): Promise<void>;
  /** Resolves (never rejects) when the agent has exited, by itself or otherwise. */
  readonly exited: Promise<AgentExit>;
}

/** Why an agent could not start. isRetryable false: trying again cannot help until the owner acts. */
export class AgentStartError extends Error {
  constructor(
    message: string,
    readonly isRetryable: boolean,
  ) {
    super(message);
    this.name = 'AgentStartError';
  }
}

/** Starts agents. The real one runs containers; tests use a fake. */
export interface AgentRunner {
  /** Rejects only when the agent could not be started at all (engine down, image missing). */
  start(request: AgentStartRequest): Promise<AgentSession>;
}

/** What an agent's tool call gets back from the host. */
export type ToolAnswer = { ok: true; result: string } | { ok: false; error: string };

/** Answers task tool requests. The door is the group whose IPC folder the file sat in: never a field of the file. */
export interface TaskTools {
  /** Never throws. */
  handle(request: TaskToolRequest, door: { group: Group; chat: ChatAddress }): ToolAnswer;
}

/** The admin agent's update_global_memory door: the proposal waits for the owner. Never rejects. */
export interface MemoryProposer {
  propose(group: Group, content: string): Promise<ToolAnswer>;
}

/** What the host hands to the parts it builds. */
export interface HostContext {
  store: Store;
  /** Records a denial or privileged action. Must not throw. */
  audit(entry: AuditEntry): void;
  now(): number;
  /** Answers the agents' task tools (schedule_task …). */
  taskTools?: TaskTools;
  /** Holds the admin agent's update_global_memory proposals for the owner's approval. */
  memoryProposals?: MemoryProposer;
  /** Asks the owner about a destination not on a group's network list (src/sandbox/egress/questions.ts). */
  egressQuestions?: {
    ask(groupFolder: string, host: string, port: number): Promise<'once' | 'always' | 'deny'>;
  };
  /** Tells the owner in the admin chat, once per key and rate-limited. Must not throw. */
  notifyOwner?(key: string, text: string): void;
  /** The owner's web page's way into the running host (usable once start-up is done). */
  ownerWindow?: OwnerWindow;
}

/** What the owner's web page does through the host besides reading the store. */
export interface OwnerWindow {
  /** Runs one owner operation (an OwnerOp) as the page: authorized and audited there, like the CLI's. */
  perform(request: { op: string }): Promise<{ ok: boolean; text: string }>;
  /** The live agents and the groups waiting for a slot (the group queue's snapshot). */
  agents(): { running: Array<{ groupId: number; folder: string; state: string }>; waiting: number[] };
}
