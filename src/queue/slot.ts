// The state of one group's live agent run, as the group queue keeps it (group-queue.ts changes it; nothing else).
import type { ChatAddress } from '../store/records.js';
import type { AgentSession } from '../types.js';
import type { Work } from './work.js';

/** One group's live agent run. Only group-queue.ts changes it. */
export interface Slot {
  groupId: number;
  folder: string;
  runId: string;
  chat: ChatAddress;
  state: 'starting' | 'busy' | 'idle' | 'stopping';
  session: AgentSession | null;
  /** Work handed to the agent that it has not finished, by batch id. */
  open: Map<string, Work>;
  lastActiveAt: number;
  /** Work arrived that this run could not take (another chat, or the agent was starting or stopping). */
  hasMoreWork: boolean;
  /** A fresh session for one isolated task run: nothing joins it, its session id is not kept. */
  isIsolated: boolean;
  /** Started for a task and nothing else has happened: stop it once idle instead of keeping it warm. */
  isStopWhenIdle: boolean;
  /** The owner's stop button ended this run: its turn is settled as skipped, never retried. */
  isStoppedByOwner?: boolean;
}
