// The messages between the bench driver and the Warren host it measures (a child process), and their one clock.
import { z } from 'zod';

/**
 * Milliseconds on CLOCK_MONOTONIC (libuv's hrtime). Every process on the machine reads the same clock, so a time
 * taken in the host child and one taken in the driver (the fake model API) can be subtracted directly.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The driver's orders to the host child. Each carries an id; the child answers with a `reply` of that id. */
export const hostCommandSchema = z.discriminatedUnion('type', [
  /** Registers groups, each bound to the fake channel's chat of the same name. */
  z.object({
    type: z.literal('register'),
    id: z.number(),
    folders: z.array(z.string()).max(1000),
    trigger: z.enum(['always', 'mention']),
  }),
  /** Hands messages to the host, one after another in one tick, as a channel adapter would. */
  z.object({
    type: z.literal('send'),
    id: z.number(),
    messages: z.array(z.object({ chatId: z.string(), text: z.string() })).max(1000),
  }),
  /** A busy chat: count messages that trigger nothing, in chunks, yielding to the event loop between chunks. */
  z.object({
    type: z.literal('ingest'),
    id: z.number(),
    chatId: z.string(),
    count: z.number().int().min(1).max(1_000_000),
    chunk: z.number().int().min(1).max(10_000),
  }),
  /** Stops one group's agent the way eviction does, and waits until its container is gone. */
  z.object({ type: z.literal('stop-agent'), id: z.number(), folder: z.string() }),
  z.object({ type: z.literal('stats'), id: z.number() }),
  /** Stops the host as `warren start` does on SIGTERM, then exits. */
  z.object({ type: z.literal('shutdown'), id: z.number() }),
]);
export type HostCommand = z.infer<typeof hostCommandSchema>;
/** A command as the driver writes it; the host process adds nothing but the id. */
export type HostOrder = WithoutId<HostCommand>;
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export const receivedSchema = z.object({
  chatId: z.string(),
  /** Just before the host's onMessage was called. */
  at: z.number(),
  /** How long onMessage took (store, route, wake the queue, write the prompt file when an agent runs). */
  handleMs: z.number(),
});
export type Received = z.infer<typeof receivedSchema>;

export const hostStatsSchema = z.object({
  heapUsedBytes: z.number(),
  rssBytes: z.number(),
  running: z.array(z.object({ folder: z.string(), state: z.string() })),
  waiting: z.number(),
  messages: z.array(z.object({ status: z.string(), count: z.number() })),
  outbox: z.record(z.string(), z.number()),
});
export type HostStats = z.infer<typeof hostStatsSchema>;

/** What the host child tells the driver: answers to commands, and timestamps of what happens inside it. */
export const hostEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('started'), installId: z.string() }),
  z.object({
    type: z.literal('reply'),
    id: z.number(),
    ok: z.boolean(),
    error: z.string().optional(),
    received: z.array(receivedSchema).optional(),
    ingest: z.object({ count: z.number(), ms: z.number() }).optional(),
    stats: hostStatsSchema.optional(),
  }),
  /** The delivery handed a reply to the channel (the fake channel's send was called). */
  z.object({ type: z.literal('sent'), chatId: z.string(), text: z.string(), at: z.number() }),
  /** The host asked the engine for a container (its create request is sent right after). */
  z.object({
    type: z.literal('container-start'),
    folder: z.string(),
    name: z.string(),
    at: z.number(),
    /** The host end of the run's model API socket (the credential proxy). */
    apiSocket: z.string().nullable(),
  }),
  /** The runner's first output file (its `ready` event) appeared in the run's output folder. */
  z.object({ type: z.literal('agent-ready'), folder: z.string(), at: z.number() }),
  /** Any runner output file appeared in the run's output folder (as the host's own watcher sees it). */
  z.object({ type: z.literal('output-file'), folder: z.string(), at: z.number() }),
  /** A runner log line worth a timestamp; time is the container's wall clock (Date.now(), ms). */
  z.object({ type: z.literal('runner-log'), folder: z.string(), message: z.string(), time: z.number() }),
  z.object({ type: z.literal('container-exit'), folder: z.string(), at: z.number() }),
]);
export type HostEvent = z.infer<typeof hostEventSchema>;

/** Runner log messages the bench timestamps (agent/src/claude-launch.ts, run-agent.ts, runner.ts, claude-loop.ts). */
export const TIMED_RUNNER_LOGS = [
  'claude code started early',
  'runner starting',
  'session started',
  'prompt received',
  'turn ended',
  'stop requested',
  'runner exiting',
];
