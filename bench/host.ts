// The Warren host the bench measures, in its own process: the real startWarren, container runner and Docker, wired
// as `warren start` wires them, with the fake channel in place of chat apps, driven over the process's IPC channel.
import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { createRuntime } from '../src/image/engine-setup.js';
import { registerGroup } from '../src/intake/registration.js';
import { createLogger } from '../src/log.js';
import { startHostParts } from '../src/main.js';
import { CONTAINER_PATHS, isIpcFileName } from '../src/protocol/ipc.js';
import type { ContainerRuntime, ContainerSpec } from '../src/sandbox/runtimes/index.js';
import type { AgentSession, OutboundMessage, SendResult } from '../src/types.js';
import { FakeChannel } from '../test/fake-channel.js';
import {
  type HostCommand,
  type HostEvent,
  hostCommandSchema,
  monotonicMs,
  type Received,
  TIMED_RUNNER_LOGS,
} from './protocol.js';

/** The runner's first output file is its `ready` event (agent/src/runner.ts writes it before anything else). */
const FIRST_OUTPUT_FILE = /^0{11}1-/;

function tell(event: HostEvent): void {
  process.send?.(event);
}

/** The fake channel, plus a timestamp for every reply the delivery hands it. */
class BenchChannel extends FakeChannel {
  override async send(message: OutboundMessage): Promise<SendResult> {
    const at = monotonicMs();
    const result = await super.send(message);
    tell({ type: 'sent', chatId: message.chatId, text: message.text, at });
    return result;
  }

  override async setTyping(): Promise<void> {}
}

/** The engine as the host uses it, reporting when a container is asked for, says it is ready, and ends. */
function timedRuntime(base: ContainerRuntime): ContainerRuntime {
  return {
    ...base,
    async start(spec: ContainerSpec) {
      const at = monotonicMs();
      const socketMount = spec.mounts.find(
        (mount) => mount.containerPath === path.posix.dirname(CONTAINER_PATHS.apiSocket),
      );
      const apiSocket = socketMount
        ? path.join(socketMount.hostPath, path.posix.basename(CONTAINER_PATHS.apiSocket))
        : null;
      tell({ type: 'container-start', folder: spec.groupFolder, name: spec.name, at, apiSocket });
      const output = spec.mounts.find((mount) => mount.containerPath === CONTAINER_PATHS.output);
      let watcher: FSWatcher | null = null;
      if (output) {
        // A file's name shows up twice (written, then removed by the host): the first time is when it appeared.
        const seen = new Set<string>();
        watcher = watch(output.hostPath, { persistent: false }, (_event, name) => {
          if (!name || !isIpcFileName(name) || seen.has(name)) return;
          seen.add(name);
          const at = monotonicMs();
          if (FIRST_OUTPUT_FILE.test(name)) tell({ type: 'agent-ready', folder: spec.groupFolder, at });
          tell({ type: 'output-file', folder: spec.groupFolder, at });
        });
      }
      const forward = spec.onOutput;
      const container = await base.start({
        ...spec,
        onOutput(line) {
          if (line.line.includes('"msg":"')) reportRunnerLog(spec.groupFolder, line.line);
          forward?.(line);
        },
      });
      void container.exited.then(() => {
        watcher?.close();
        tell({ type: 'container-exit', folder: spec.groupFolder, at: monotonicMs() });
      });
      return container;
    },
  };
}

function reportRunnerLog(folder: string, line: string): void {
  const message = TIMED_RUNNER_LOGS.find((name) => line.includes(`"msg":"${name}"`));
  if (!message) return;
  try {
    const time = (JSON.parse(line) as { time?: unknown }).time;
    if (typeof time === 'number') tell({ type: 'runner-log', folder, message, time });
  } catch {
    // Not a log line after all.
  }
}

async function main(): Promise<void> {
  const apiKey = process.env.BENCH_API_KEY;
  const installId = process.env.BENCH_INSTALL_ID;
  const packageRoot = process.env.BENCH_PACKAGE_ROOT;
  if (!apiKey || !installId || !packageRoot) throw new Error('run by bench/run.ts only');
  const config = loadConfig({ env: process.env, cwd: process.env.WARREN_DATA_DIR ?? '.' });
  const log = await createLogger({ level: config.logLevel });
  const runtime = timedRuntime(createRuntime({ kind: config.runtime }, { log }));
  const channel = new BenchChannel();
  const sessions = new Map<string, AgentSession>();
  // The same wiring as `warren start` (src/main.ts), with the bench's channel and a runner that keeps sessions.
  const { warren, runner } = await startHostParts({
    config,
    log,
    runtime,
    installId,
    credential: { kind: 'api-key', apiKey },
    packageRoot,
    localToken: 'bench',
    extraChannels: [channel],
    // Bounds a failing run (the default retries for minutes); a run that works never retries.
    agentEnv: { CLAUDE_CODE_MAX_RETRIES: '2' },
    // Keeps each group's session, so the bench can stop an agent the way eviction does.
    wrapRunner: (inner) => ({
      async start(request) {
        const session = await inner.start(request);
        sessions.set(request.group.folder, session);
        return session;
      },
    }),
  });
  const closeRunner = () => runner.close();

  async function handle(command: HostCommand): Promise<Omit<Extract<HostEvent, { type: 'reply' }>, 'type'>> {
    switch (command.type) {
      case 'register':
        for (const folder of command.folders) {
          registerGroup(
            warren.store,
            config.dataDir,
            {
              folder,
              name: folder,
              chat: { channel: channel.name, chatId: folder },
              isDirect: false,
              trigger: command.trigger,
            },
            Date.now(),
          );
        }
        return { id: command.id, ok: true };
      case 'send': {
        const received: Received[] = [];
        for (const message of command.messages) {
          const at = monotonicMs();
          channel.receive({ chatId: message.chatId, text: message.text, senderName: 'Bench' });
          received.push({ chatId: message.chatId, at, handleMs: monotonicMs() - at });
        }
        return { id: command.id, ok: true, received };
      }
      case 'ingest': {
        const started = monotonicMs();
        for (let sent = 0; sent < command.count; ) {
          const end = Math.min(command.count, sent + command.chunk);
          for (; sent < end; sent++) {
            channel.receive({
              chatId: command.chatId,
              text: `message ${sent} in a busy chat about lunch plans, the weather and nothing in particular`,
              senderId: `user-${sent % 40}`,
              senderName: `Member ${sent % 40}`,
            });
          }
          // A real adapter gets its messages in network reads: give timers and I/O their turn between chunks.
          await new Promise((resolve) => setImmediate(resolve));
        }
        return { id: command.id, ok: true, ingest: { count: command.count, ms: monotonicMs() - started } };
      }
      case 'stop-agent': {
        const session = sessions.get(command.folder);
        if (session) {
          await session.stop('stopped by the bench');
          sessions.delete(command.folder);
        }
        return { id: command.id, ok: true };
      }
      case 'stats': {
        const snapshot = warren.queue.snapshot();
        const memory = process.memoryUsage();
        const messages = new Map<string, number>();
        for (const row of warren.store.messages.countByStatus()) {
          messages.set(row.status, (messages.get(row.status) ?? 0) + row.count);
        }
        return {
          id: command.id,
          ok: true,
          stats: {
            heapUsedBytes: memory.heapUsed,
            rssBytes: memory.rss,
            running: snapshot.running.map((slot) => ({ folder: slot.folder, state: slot.state })),
            waiting: snapshot.waiting.length,
            messages: [...messages].map(([status, count]) => ({ status, count })),
            outbox: warren.store.outbox.counts(),
          },
        };
      }
      case 'shutdown':
        await warren.stop();
        await closeRunner();
        return { id: command.id, ok: true };
    }
  }

  process.on('message', (raw) => {
    const parsed = hostCommandSchema.safeParse(raw);
    if (!parsed.success) {
      log.error({ error: parsed.error.message }, 'bench host: invalid command');
      return;
    }
    const command = parsed.data;
    handle(command).then(
      (reply) => {
        tell({ type: 'reply', ...reply });
        if (command.type === 'shutdown') process.disconnect();
      },
      (error: unknown) => tell({ type: 'reply', id: command.id, ok: false, error: String(error) }),
    );
  });
  // The driver went away (it crashed or was killed): stop the agents rather than leave them behind.
  process.once('disconnect', () => {
    void warren
      .stop()
      .then(() => closeRunner())
      .finally(() => process.exit(0));
  });
  tell({ type: 'started', installId });
}

main().catch((error: unknown) => {
  process.stderr.write(`bench host failed: ${String(error)}\n`);
  process.exit(1);
});
