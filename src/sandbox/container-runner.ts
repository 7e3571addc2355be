// The real AgentRunner: one hardened container per group run, from start to ready, follow-ups, stop and exit.
// Its folders and mounts are run-folders.ts's, the proxy's budget and metering agent-proxy.ts's.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { CONTAINER_PATHS, RUN_ENV, runSettingsToEnv } from '../protocol/ipc.js';
import { formatChatAddress } from '../store/records.js';
import type { HostContext } from '../types.js';
import {
  type AgentExit,
  type AgentRunner,
  type AgentSession,
  AgentStartError,
  type AgentStartRequest,
} from '../types.js';
import { type EnsureImageResult, ensureAgentImage } from './agent-image.js';
import { createAgentProxy, type RunState } from './agent-proxy.js';
import type { CredentialProxy, ModelCredential } from './credential-proxy.js';
import { createDiskQuota } from './disk-quota.js';
import { createFolderJobs } from './folder-jobs.js';
import { createRunIpc, type RunIpc, type RunnerExitReason } from './ipc.js';
import { clearRunDirs } from './ipc-folder.js';
import { buildRunMounts, containerUserFor, prepareRunFolders } from './run-folders.js';
import {
  type ContainerExit,
  type ContainerRuntime,
  containerName,
  type RunningContainer,
} from './runtimes/index.js';
import { createVolumes } from './volumes.js';

export interface ContainerRunnerDeps extends HostContext {
  config: Config;
  log: Logger;
  runtime: ContainerRuntime;
  /** Labels this install's containers; orphan clean-up only touches these. */
  installId: string;
  /** null: no key configured; every start is refused with a message that says how to fix it. */
  credential: ModelCredential | null;
  /** Where the agent image is built from (agent/Dockerfile) and what is never mounted. */
  packageRoot: string;
  /**
   * Extra, non-secret environment for the agent (e.g. CLAUDE_CODE_MAX_RETRIES in tests). Checked: names that
   * look like credentials and values holding the model credential are refused.
   */
  agentEnv?: Record<string, string>;
  /** How long a stopping agent may take to finish by itself before its container is stopped. Default 5 s. */
  stopGraceMs?: number;
  /** How long a new container may take to say it is ready. Default 60 s. */
  readyTimeoutMs?: number;
}

export type ContainerRunner = AgentRunner & {
  /** Builds the agent image if the engine lacks it. Never rejects: the result says what went wrong. */
  ensureImage(): Promise<EnsureImageResult>;
  /** Stops every running agent, then the credential proxy. */
  close(): Promise<void>;
};

const DEFAULT_STOP_GRACE_MS = 5_000;
const DEFAULT_READY_TIMEOUT_MS = 60_000;
/** After the grace period the engine gets this long (SIGTERM → SIGKILL) to end the container. */
const ENGINE_STOP_GRACE_MS = 2_000;
/** Env names that could carry a secret are never passed to a container, whatever the caller says. */
const CREDENTIAL_LIKE_NAME = /api[-_]?key|token|secret|passw|auth|cookie|credential/i;

/** The agent runner writes JSON log lines (pino-like) on stderr. */
const runnerLogLineSchema = z.object({ level: z.number(), msg: z.string() });

export function createContainerRunner(deps: ContainerRunnerDeps): ContainerRunner {
  const { config, runtime } = deps;
  const log = deps.log.child({ module: 'container-runner' });
  const containerUser = containerUserFor();
  const stopGraceMs = deps.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
  const readyTimeoutMs = deps.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const runs = new Map<string, RunState>();
  const sessions = new Set<{ stop(reason: string): Promise<void> }>();
  const agentEnv = checkAgentEnv(deps.agentEnv ?? {}, deps.credential);
  let isClosed = false;

  const proxy: CredentialProxy | null = deps.credential
    ? createAgentProxy({
        config,
        credential: deps.credential,
        store: deps.store,
        audit: deps.audit,
        log: deps.log,
        now: deps.now,
        runs,
      })
    : null;

  // Nothing of this install can legitimately be running before its first start: clear what a dead host left.
  const orphansCleared = runtime.removeOrphans(deps.installId).then(
    (names) => {
      if (names.length > 0) log.info({ containers: names }, 'removed orphaned agent containers');
    },
    (error: unknown) => log.warn({ err: error }, 'could not look for orphaned agent containers'),
  );

  // An engine in a VM (Docker Desktop, a podman machine) may have fewer CPUs than this machine, and refuses a
  // limit above its count: every start would fail. Asked once; a limit it cannot give is lowered, and logged.
  const agentCpus = runtime.cpuCount().then(
    (count) => {
      if (count === null || count >= config.agentCpus) return config.agentCpus;
      log.warn(
        { configured: config.agentCpus, engine: count },
        'the engine has fewer CPUs; agents get what it has',
      );
      return count;
    },
    () => config.agentCpus,
  );

  const jobs = createFolderJobs({
    runtime,
    installId: deps.installId,
    image: config.agentImage,
    user: containerUser,
    log: deps.log,
  });
  const volumes = createVolumes({
    dataDir: config.dataDir,
    mode: config.diskQuotaMode,
    user: containerUser,
    log: deps.log,
  });
  const quotaMbOf = (folder: string) => deps.store.groups.diskQuotaMb(folder) ?? config.diskQuotaMb;
  /** Groups on a file system of their own: the kernel holds them to their quota; only the free-disk floor is watched. */
  const hardLimited = new Set<string>();
  const ensureVolume = async (folder: string) => {
    const volume = await volumes.ensure(folder, quotaMbOf(folder));
    if (volume) hardLimited.add(folder);
    else hardLimited.delete(folder);
    return volume;
  };
  // Volumes made before are mounted at start, so what the host saves for a group (media) lands in them.
  const volumesMounted = Promise.all(
    deps.store.groups
      .list()
      .filter((group) => existsSync(path.join(config.dataDir, 'volumes', `${group.folder}.ext4`)))
      .map((group) => ensureVolume(group.folder)),
  );
  const quota = createDiskQuota({
    dataDir: config.dataDir,
    quotaMbOf: (folder) => (hardLimited.has(folder) ? 0 : quotaMbOf(folder)),
    minFreeMb: config.minFreeDiskMb,
    // The three places of a group on the host's disk that its agent can fill.
    measure: (folder) =>
      jobs.measure(
        folder,
        ['groups', 'sessions', 'ipc']
          .map((part) => path.join(config.dataDir, part, folder))
          .filter(existsSync),
      ),
    ...(deps.notifyOwner ? { notifyOwner: deps.notifyOwner } : {}),
    remember: {
      load: (folder) => deps.store.groups.diskUse(folder),
      save: (folder, use) => deps.store.groups.setDiskUse(folder, use),
    },
    now: deps.now,
    log: deps.log,
  });

  /** Why a container could not start, in words that say what to do. */
  async function explainStartFailure(exit: ContainerExit): Promise<string> {
    const availability = await runtime.checkAvailable();
    if (!availability.ok) return `${availability.reason}; ${availability.fix}`;
    if (!(await runtime.hasImage(config.agentImage))) {
      return `the agent image ${config.agentImage} is missing: run \`warren image build\``;
    }
    return `the container engine could not start the agent: ${exit.detail ?? `exit ${exit.exitCode}`}`;
  }

  function describeExit(
    exit: ContainerExit,
    runnerExit: RunnerExitReason | null,
    stopReason: string | null,
    limitReason: string | null = null,
  ): AgentExit {
    if (limitReason !== null) return { status: 'crashed', reason: limitReason, isRetryable: false };
    switch (exit.reason) {
      case 'timeout':
        // Not retried: a hung agent would hold its group for the full ceiling again, and again.
        return {
          status: 'crashed',
          reason: `ran longer than the ${config.agentMaxRunMinutes} min limit (not tried again; ask again to retry)`,
          isRetryable: false,
        };
      case 'oom':
        return { status: 'crashed', reason: `ran out of memory (limit ${config.agentMemoryMb} MB)` };
      case 'start-failed':
        return { status: 'crashed', reason: `could not start: ${exit.detail ?? 'unknown'}` };
      case 'killed':
        return stopReason !== null && runnerExit?.reason !== 'error'
          ? { status: 'exited', reason: `stopped: ${stopReason}` }
          : { status: 'crashed', reason: `killed (exit ${exit.exitCode ?? 'unknown'})` };
      case 'exited':
        if (exit.exitCode === 0 && runnerExit !== null && runnerExit.reason !== 'error') {
          return {
            status: 'exited',
            reason:
              runnerExit.reason === 'stop' && stopReason !== null
                ? `stopped: ${stopReason}`
                : runnerExit.reason,
          };
        }
        if (runnerExit?.reason === 'error') {
          return { status: 'crashed', reason: `agent error: ${runnerExit.error ?? 'unknown'}` };
        }
        if (exit.exitCode === 137) return { status: 'crashed', reason: 'killed (exit 137)' };
        if (exit.exitCode === 143) return { status: 'crashed', reason: 'terminated (exit 143)' };
        return { status: 'crashed', reason: `exited unexpectedly (exit ${exit.exitCode ?? 'unknown'})` };
    }
  }

  async function start(request: AgentStartRequest): Promise<AgentSession> {
    if (isClosed) throw new Error('the agent runner is closed');
    if (!proxy) {
      throw new AgentStartError(
        'no ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) is set, so the agent cannot reach the model; ' +
          'set it in the environment or .env and run `warren doctor`',
        false,
      );
    }
    await orphansCleared;
    const { group } = request;
    const folder = group.folder;
    if (runs.has(folder)) throw new Error(`an agent for group ${folder} is already running`);
    const runLog = log.child({ group: folder, runId: request.runId });
    const startedAt = deps.now();

    let runnerExit: RunnerExitReason | null = null;
    let stopReason: string | null = null;
    let state: 'starting' | 'running' | 'stopping' | 'ended' = 'starting';
    let container: RunningContainer | null = null;
    let ipc: RunIpc | null = null;
    let resolveReady: () => void = () => {};
    // Set once the session exists; abuse noticed before that ends the run through the start-up checks.
    let requestStop: (reason: string) => Promise<void> = async () => {};
    const ready = new Promise<void>((resolve) => {
      resolveReady = resolve;
    });

    const run: RunState = {
      folder,
      runId: request.runId,
      budgetRefused: false,
      isBudgetNoticeSent: false,
      emit(event) {
        // A failure after the budget was refused cannot be fixed by trying again today.
        const decorated =
          event.type === 'turn-end' && event.isError && run.budgetRefused
            ? { ...event, isRetryable: false }
            : event;
        try {
          request.onEvent(decorated);
        } catch (error) {
          runLog.error({ err: error, event: event.type }, 'onEvent threw');
        }
      },
    };
    runs.set(folder, run);

    const dataDir = config.dataDir;
    const runDir = path.join(dataDir, 'ipc', folder);
    let limitReason: string | null = null;
    let unwatchDisk = () => {};
    const cleanUp = async () => {
      ipc?.close();
      unwatchDisk();
      await proxy
        .closeGroup(folder)
        .catch((error: unknown) => runLog.warn({ err: error }, 'proxy close failed'));
      jobs.clear(folder, clearRunDirs(runDir));
      if (runs.get(folder) === run) runs.delete(folder);
    };

    try {
      await volumesMounted;
      await ensureVolume(folder);
      const { inputDir, outputDir, socketPath, setAside } = prepareRunFolders(
        dataDir,
        folder,
        runDir,
        containerUser,
      );
      jobs.clear(folder, setAside);
      const refusal = await quota.checkBeforeStart(folder);
      if (refusal !== null) throw new AgentStartError(refusal, false);
      await proxy.listen(folder, socketPath);

      const mounts = buildRunMounts(
        { config, packageRoot: deps.packageRoot, store: deps.store, audit: deps.audit, log },
        group,
        { inputDir, outputDir },
      );

      ipc = createRunIpc({
        runDir,
        group,
        chat: request.chat,
        store: deps.store,
        audit: deps.audit,
        log: deps.log,
        now: deps.now,
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
          if (container) void container.stop(0);
          else void requestStop(`misbehaving: ${reason}`);
        },
        ...(deps.taskTools ? { taskTools: deps.taskTools } : {}),
        ...(deps.memoryProposals ? { memoryProposals: deps.memoryProposals } : {}),
      });
      const isWritten = request.preCheck
        ? ipc.writeTask(request.batchId, request.prompt, request.preCheck)
        : ipc.writePrompt(request.batchId, request.prompt);
      if (!isWritten) throw new Error('could not write the prompt file');
      ipc.start();

      const env = {
        ...agentEnv,
        ...runSettingsToEnv({
          runId: request.runId,
          groupFolder: folder,
          isAdmin: group.isAdmin,
          chat: formatChatAddress(request.chat),
          sessionId: request.sessionId,
          idleTimeoutMs: config.agentIdleSeconds * 1000,
          assistantName: config.assistantName,
        }),
      };
      if (config.logLevel === 'debug' || config.logLevel === 'trace') env.WARREN_LOG_LEVEL = 'debug';

      container = await runtime.start({
        name: containerName(deps.installId, folder),
        image: config.agentImage,
        installId: deps.installId,
        groupFolder: folder,
        mounts,
        env,
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
    // Past its disk quota (or with the disk nearly full) an agent is killed at once, not asked to finish; while it
    // is measured it is frozen, so it cannot write on meanwhile.
    unwatchDisk = quota.watch(folder, {
      onExceeded(reason) {
        limitReason = reason;
        void started.stop(0);
        void started.pause(false);
      },
      async hold(isHeld) {
        await started.pause(isHeld);
      },
    });

    const exited: Promise<AgentExit> = started.exited
      .then(async (exit) => {
        state = 'ended';
        // The runner's last files (turn-end for unanswered prompts, exit) may have landed just before it ended.
        await ipc?.scan();
        await cleanUp();
        const agentExit = describeExit(exit, runnerExit, stopReason, limitReason);
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
      sendFollowUp(prompt, batchId, options) {
        if (state !== 'running' || !ipc) return false;
        if (options?.preCheck) return ipc.writeTask(batchId, prompt, options.preCheck);
        return ipc.writePrompt(batchId, prompt);
      },
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
    requestStop = session.stop;
    sessions.add(session);
    void exited.then(() => sessions.delete(session));
    if (isClosed) {
      await session.stop('Warren is shutting down');
      throw new Error('the agent runner closed while the agent was starting');
    }

    // Ready, or the container ended first (could not start, or the runner died at once), or it never answers.
    const outcome = await Promise.race([
      ready.then(() => 'ready' as const),
      started.exited.then(() => 'ended' as const),
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
      throw new Error(
        `the agent container did not become ready within ${Math.round(readyTimeoutMs / 1000)} s`,
      );
    }
    const exit = await started.exited;
    await exited;
    if (exit.reason === 'start-failed') throw new Error(await explainStartFailure(exit));
    const tail = started.stderrTail().trim().split('\n').slice(-3).join(' | ');
    throw new Error(
      `the agent container ended before it was ready (${describeExit(exit, runnerExit, stopReason).reason})${tail ? `: ${tail}` : ''}`,
    );
  }

  return {
    start,
    ensureImage: () => ensureAgentImage({ runtime, config, packageRoot: deps.packageRoot, log: deps.log }),
    async close() {
      isClosed = true;
      quota.close();
      await Promise.all([...sessions].map((session) => session.stop('Warren is shutting down')));
      await jobs.close();
      await proxy?.close();
    },
  };
}

/** Drops env entries that could carry a secret; throws for a value that holds the model credential (a bug). */
function checkAgentEnv(
  env: Record<string, string>,
  credential: ModelCredential | null,
): Record<string, string> {
  const secret = credential ? (credential.kind === 'api-key' ? credential.apiKey : credential.token) : null;
  const reserved = new Set<string>(Object.values(RUN_ENV));
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (CREDENTIAL_LIKE_NAME.test(name) || reserved.has(name)) {
      throw new Error(`agentEnv may not set ${name}: it is reserved or looks like a credential`);
    }
    if (secret && value.includes(secret)) throw new Error(`agentEnv ${name} holds the model credential`);
    result[name] = value;
  }
  return result;
}

function forwardRunnerLog(log: Logger, line: string): void {
  if (line.trim() === '') return;
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    log.debug({ line: line.slice(0, 2000) }, 'agent output');
    return;
  }
  const parsed = runnerLogLineSchema.safeParse(value);
  if (!parsed.success) {
    log.debug({ line: line.slice(0, 2000) }, 'agent output');
    return;
  }
  const fields = { agent: value as Record<string, unknown> };
  if (parsed.data.level >= 50) log.error(fields, 'agent runner error');
  else if (parsed.data.level >= 40) log.warn(fields, 'agent runner warning');
  else log.debug(fields, 'agent runner');
}
