// The real AgentRunner: one hardened container per group run, from start to ready, follow-ups, stop and exit.
// Folders, mounts and disk: run-folders.ts; budget and metering: agent-proxy.ts; how a run ended: run-exit.ts.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONTAINER_PATHS, runSettingsToEnv } from '../protocol/ipc.js';
import { formatChatAddress } from '../store/records.js';
import {
  type AgentExit,
  type AgentRunner,
  type AgentSession,
  AgentStartError,
  type AgentStartRequest,
  type PreCheck,
} from '../types.js';
import { createAgentEgress } from './agent-egress.js';
import { createAgentProxy, type RunState } from './agent-proxy.js';
import { checkAgentEnv, type ModelCredential } from './credentials.js';
import { containerUserFor } from './group-folder.js';
import { createRunIpc, type RunIpc, type RunnerExitReason } from './ipc.js';
import { describeExit, explainStartFailure, forwardRunnerLog } from './run-exit.js';
import { createRunFolders, type RunFoldersDeps } from './run-folders.js';
import { containerName, type RunningContainer } from './runtimes/index.js';

export interface ContainerRunnerDeps extends Omit<RunFoldersDeps, 'user'> {
  /** null: no key configured; every start is refused with a message that says how to fix it. */
  credential: ModelCredential | null;
  /** Extra, non-secret env for the agent (tests bound the SDK's retries); anything like a secret is refused. */
  agentEnv?: Record<string, string>;
  /** How long a stopping agent may take to end by itself before its container is stopped. */
  stopGraceMs?: number;
  readyTimeoutMs?: number;
  /** Names to addresses for the egress gateway: the system's resolver unless a test maps its fake hosts. */
  resolveName?(host: string): Promise<string[]>;
}

export type ContainerRunner = AgentRunner & { close(): Promise<void> };

/** After the stop grace the engine gets this long (SIGTERM → SIGKILL) to end the container. */
const ENGINE_STOP_GRACE_MS = 2_000;
const NO_CREDENTIAL =
  'no ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) is set, so the agent cannot reach the model; ' +
  'set it in the environment or .env and run `warren doctor`';

export function createContainerRunner(deps: ContainerRunnerDeps): ContainerRunner {
  const { config, runtime, installId, stopGraceMs = 5_000, readyTimeoutMs = 60_000 } = deps;
  // The parts below get the host's context, never the model credential (the proxy's alone).
  const { credential, ...host } = deps;
  const log = deps.log.child({ module: 'container-runner' });
  const containerUser = containerUserFor();
  const runs = new Map<string, RunState>();
  const sessions = new Set<AgentSession>();
  const agentEnv = checkAgentEnv(deps.agentEnv ?? {}, credential);
  if (config.logLevel === 'debug' || config.logLevel === 'trace') agentEnv.WARREN_LOG_LEVEL = 'debug';
  let isClosed = false;
  const proxy = credential ? createAgentProxy({ ...host, credential, runs }) : null;
  const egress = createAgentEgress({ ...host, config, installId, runs, resolve: deps.resolveName });

  // Nothing of this install can legitimately be running before its first start: clear what a dead host left.
  const orphansCleared = runtime.removeOrphans(installId).then(
    (names) => {
      if (names.length > 0) log.info({ containers: names }, 'removed orphaned agent containers');
    },
    (error: unknown) => log.warn({ err: error }, 'could not look for orphaned agent containers'),
  );

  // An engine in a VM (Docker Desktop, podman machine) may have fewer CPUs and refuse a higher limit: lower it.
  const agentCpus = runtime.cpuCount().then(
    (count) => {
      if (count === null || count >= config.agentCpus) return config.agentCpus;
      log.warn({ configured: config.agentCpus, engine: count }, 'the engine has fewer CPUs than configured');
      return count;
    },
    () => config.agentCpus,
  );

  const folders = createRunFolders({ ...host, user: containerUser });

  async function startAgent(request: AgentStartRequest): Promise<AgentSession> {
    if (isClosed) throw new Error('the agent runner is closed');
    if (!proxy) throw new AgentStartError(NO_CREDENTIAL, false);
    await orphansCleared;
    const { group, runId } = request;
    const { folder } = group;
    if (runs.has(folder)) throw new Error(`an agent for group ${folder} is already running`);
    const runLog = log.child({ group: folder, runId });
    const startedAt = deps.now();

    let runnerExit: RunnerExitReason | null = null;
    let stopReason: string | null = null;
    /** Why the host ended the run itself (over its disk quota, misbehaving): a crash not worth retrying. */
    let limitReason: string | null = null;
    let state: 'starting' | 'running' | 'stopping' | 'ended' = 'starting';
    let container: RunningContainer | null = null;
    let ipc: RunIpc | null = null;
    let unwatchDisk = () => {};
    let resolveReady = () => {};
    const ready = new Promise<void>((resolve) => {
      resolveReady = resolve;
    });
    const send = (prompt: string, batchId: string, preCheck: PreCheck | undefined) =>
      (preCheck ? ipc?.writeTask(batchId, prompt, preCheck) : ipc?.writePrompt(batchId, prompt)) ?? false;

    const run: RunState = {
      runId,
      budgetRefused: false,
      // Both callers (the IPC handler, the proxy's refusal) catch what onEvent throws.
      emit(event) {
        // A failure after the budget was refused cannot be fixed by trying again now, and the chat was told why.
        const isHopeless = event.type === 'turn-end' && event.isError && run.budgetRefused;
        request.onEvent(isHopeless ? { ...event, isRetryable: false, isTold: true } : event);
      },
    };
    runs.set(folder, run);
    const cleanUp = async () => {
      ipc?.close();
      unwatchDisk();
      await proxy.closeGroup(folder);
      await egress.closeGroup(folder);
      folders.clear(folder);
      if (runs.get(folder) === run) runs.delete(folder);
    };

    try {
      const { runDir, socketPath, mounts } = await folders.prepare(group);
      await proxy.listen(folder, socketPath);
      await egress.listen(folder, path.join(path.dirname(socketPath), 'egress.sock'));
      // The egress CA's certificate beside the sockets (a folder only the host writes): the agent trusts it.
      writeFileSync(path.join(path.dirname(socketPath), 'ca.pem'), await egress.caCertificate(), {
        mode: 0o644,
      });
      ipc = createRunIpc({
        ...host,
        runDir,
        group,
        chat: request.chat,
        onEvent: run.emit,
        onReady: () => resolveReady(),
        onRunnerExit(exit) {
          runnerExit = exit;
          if (state === 'running') state = 'stopping';
        },
        onAbuse(reason) {
          runLog.warn({ reason }, 'stopping a misbehaving agent');
          // Killed, not asked: it would go on meanwhile. Not retried: the same prompt would do it again.
          limitReason ??= `stopped: the agent misbehaved (${reason})`;
          void container?.stop(0);
        },
      });
      if (!send(request.prompt, request.batchId, request.preCheck))
        throw new Error('could not write the prompt file');
      ipc.start();

      const settings = {
        runId,
        groupFolder: folder,
        isAdmin: group.isAdmin,
        chat: formatChatAddress(request.chat),
        sessionId: request.sessionId,
        idleTimeoutMs: config.agentIdleSeconds * 1000,
        assistantName: config.assistantName,
        webSearch: host.store.groups.isWebSearchOn(folder),
        mcpServers: host.store.egress.mcpServers(folder).map(({ name, url }) => ({ name, url })),
      };
      container = await runtime.start({
        name: containerName(installId, folder),
        image: config.agentImage,
        installId,
        groupFolder: folder,
        mounts,
        env: { ...agentEnv, ...runSettingsToEnv(settings) },
        limits: { memoryMb: config.agentMemoryMb, cpus: await agentCpus, pids: config.agentPids },
        // HOME is scratch: ~/.claude.json and caches never persist; the session state is its own mount inside.
        tmpfs: [CONTAINER_PATHS.home],
        user: containerUser,
        workdir: CONTAINER_PATHS.group,
        hardRunTimeoutMs: config.agentMaxRunMinutes * 60_000,
        onOutput: ({ line }) => forwardRunnerLog(runLog, line),
      });
    } catch (error) {
      await cleanUp();
      throw error;
    }
    const started = container;
    runLog.info({ container: started.name }, 'agent container started');
    // Past its disk quota (or the disk nearly full) an agent is killed, not asked; it is frozen while measured.
    unwatchDisk = folders.quota.watch(folder, {
      onExceeded(reason) {
        limitReason = reason;
        void started.stop(0);
      },
      hold: (isHeld) => started.pause(isHeld).then(() => {}),
    });

    const exited: Promise<AgentExit> = started.exited
      .then(async (exit) => {
        state = 'ended';
        // The runner's last files (turn-end for unanswered prompts, exit) may have landed just before it ended.
        await ipc?.scan();
        await cleanUp();
        const agentExit = describeExit(config, exit, runnerExit, stopReason, limitReason);
        runLog.info({ container: started.name, ...exit, ...agentExit }, 'agent container ended');
        return agentExit;
      })
      .catch((error: unknown): AgentExit => {
        runLog.error({ err: error }, 'failed to wind up an agent run');
        return {
          status: 'crashed',
          reason: `the host failed to wind up the run: ${(error as Error).message}`,
        };
      });

    let stopping: Promise<void> | null = null;
    const session: AgentSession = {
      sendFollowUp: (prompt, batchId, options) =>
        state === 'running' && send(prompt, batchId, options?.preCheck),
      stop(reason) {
        stopping ??= (async () => {
          if (state === 'ended') return;
          state = 'stopping';
          stopReason = reason;
          runLog.info({ reason }, 'stopping agent');
          // Ask first: the runner reports unanswered prompts and exits cleanly. Then make sure.
          ipc?.writeStop(reason);
          const isGone = await Promise.race([
            exited.then(() => true),
            sleep(stopGraceMs, false, { ref: false }),
          ]);
          if (!isGone) await started.stop(ENGINE_STOP_GRACE_MS);
        })();
        return stopping.then(() => exited.then(() => {}));
      },
      exited,
    };
    sessions.add(session);
    void exited.then(() => sessions.delete(session));
    if (isClosed) {
      await session.stop('Warren is shutting down');
      throw new Error('the agent runner closed while the agent was starting');
    }

    // Ready, or the container ended first (could not start, or the runner died at once), or it never answers.
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      started.exited,
      sleep(readyTimeoutMs, 'timeout' as const, { ref: false }),
    ]);
    if (outcome === 'ready') {
      // The runner may already have said it is leaving (an instant stop or error): then it takes no prompts.
      if (state === 'starting') state = runnerExit ? 'stopping' : 'running';
      runLog.debug({ ms: deps.now() - startedAt }, 'agent ready');
      return session;
    }
    if (outcome === 'timeout') {
      await started.stop(0);
      await exited;
      const seconds = Math.round(readyTimeoutMs / 1000);
      throw new Error(`the agent container did not become ready within ${seconds} s`);
    }
    await exited;
    if (outcome.reason === 'start-failed')
      throw new Error(await explainStartFailure(runtime, config.agentImage, outcome));
    const why = describeExit(config, outcome, runnerExit, stopReason).reason;
    const tail = started.stderrTail().trim().split('\n').slice(-3).join(' | ');
    throw new Error(`the agent container ended before it was ready (${why})${tail ? `: ${tail}` : ''}`);
  }

  /** Starts under way, so close() can wait for them: the engine takes a moment to create and start a container. */
  const starting = new Set<Promise<AgentSession>>();
  return {
    start(request) {
      const started = startAgent(request);
      starting.add(started);
      void started.catch(() => {}).finally(() => starting.delete(started));
      return started;
    },
    async close() {
      isClosed = true;
      folders.quota.close();
      const stopAll = () =>
        Promise.all([...sessions].map((session) => session.stop('Warren is shutting down')));
      await stopAll();
      // A start under way when the runner closed stops its own container (see startAgent); then none is left.
      await Promise.allSettled([...starting]);
      await stopAll();
      await folders.jobs.close();
      await proxy?.close();
      await egress.close();
    },
  };
}
