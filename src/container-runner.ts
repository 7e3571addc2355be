// The real AgentRunner: one hardened container per group run, its IPC folder, and the credential proxy socket it talks to.
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { HostContext } from './app.js';
import type { Config } from './config.js';
import {
  type BudgetDecision,
  type CredentialProxy,
  createCredentialProxy,
  type ModelCredential,
} from './credential-proxy.js';
import { formatChatAddress } from './groups.js';
import { clearRunDirs, createRunIpc, prepareRunDirs, type RunIpc, type RunnerExitReason } from './ipc.js';
import { CONTAINER_PATHS, RUN_ENV, runSettingsToEnv } from './ipc-protocol.js';
import type { Logger } from './log.js';
import { buildMounts, loadMountAllowlist, type MountAllowlist } from './mounts.js';
import {
  type ContainerExit,
  type ContainerRuntime,
  containerName,
  type RunningContainer,
} from './runtimes/index.js';
import {
  type AgentEvent,
  type AgentExit,
  type AgentRunner,
  type AgentSession,
  AgentStartError,
  type AgentStartRequest,
} from './types.js';

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

export type EnsureImageResult = { ok: true; isBuilt: boolean } | { ok: false; reason: string };

const DEFAULT_STOP_GRACE_MS = 5_000;
const DEFAULT_READY_TIMEOUT_MS = 60_000;
/** After the grace period the engine gets this long (SIGTERM → SIGKILL) to end the container. */
const ENGINE_STOP_GRACE_MS = 2_000;
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
/** Env names that could carry a secret are never passed to a container, whatever the caller says. */
const CREDENTIAL_LIKE_NAME = /api[-_]?key|token|secret|passw|auth|cookie|credential/i;

/** The container's user: uid 1000 when the host is root; otherwise the host's own user, so its files just work. */
function containerUserFor(): { uid: number; gid: number } {
  const uid = process.getuid?.() ?? 1000;
  const gid = process.getgid?.() ?? 1000;
  return uid === 0 ? { uid: 1000, gid: 1000 } : { uid, gid: gid === 0 ? 1000 : gid };
}

/** UTC day of a timestamp, as the usage table keys it. */
export function usageDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/**
 * Makes a folder (and what lies directly in it) belong to the container's user, without following symlinks.
 * Only the host's own files need it (CLAUDE.md templates); what the agent writes is already its own.
 */
function giveToContainerUser(dir: string, user: { uid: number; gid: number }, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  chmodSync(dir, mode);
  if (process.getuid?.() !== 0) return;
  const own = (target: string) => {
    const stat = lstatSync(target);
    if (stat.uid !== user.uid || stat.gid !== user.gid) chownSync(target, user.uid, user.gid);
  };
  own(dir);
  for (const entry of readdirSync(dir)) {
    const target = path.join(dir, entry);
    if (!lstatSync(target).isSymbolicLink()) own(target);
  }
}

/** Builds the agent image when the engine does not have it yet. Never rejects. */
export async function ensureAgentImage(deps: {
  runtime: ContainerRuntime;
  config: Pick<Config, 'agentImage' | 'baseImage'>;
  packageRoot: string;
  log: Logger;
}): Promise<EnsureImageResult> {
  const log = deps.log.child({ module: 'agent-image' });
  try {
    if (await deps.runtime.hasImage(deps.config.agentImage)) return { ok: true, isBuilt: false };
    log.info({ image: deps.config.agentImage, base: deps.config.baseImage }, 'building the agent image');
    const result = await deps.runtime.buildImage({
      contextDir: deps.packageRoot,
      dockerfile: path.join(deps.packageRoot, 'agent', 'Dockerfile'),
      tag: deps.config.agentImage,
      buildArgs: { BASE_IMAGE: deps.config.baseImage },
      onProgress: (line) => log.info({ line }, 'image build'),
    });
    if (!result.ok) {
      log.error({ image: deps.config.agentImage, reason: result.reason }, 'agent image build failed');
      return { ok: false, reason: result.reason };
    }
    log.info({ image: deps.config.agentImage }, 'agent image built');
    return { ok: true, isBuilt: true };
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
}

/** The agent runner writes JSON log lines (pino-like) on stderr. */
const runnerLogLineSchema = z.object({ level: z.number(), msg: z.string() });

interface RunState {
  folder: string;
  /** Tags the run's model calls in the usage table (a task run's tokens are counted from them). */
  runId: string;
  budgetRefused: boolean;
  isBudgetNoticeSent: boolean;
  emit(event: AgentEvent): void;
}

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

  function checkBudget(groupFolder: string): BudgetDecision {
    const budget = config.dailyTokenBudget;
    if (budget === 0) return { decision: 'allow' };
    const totals = deps.store.usage.totalForDay(groupFolder, usageDay(deps.now()));
    const used = totals.inputTokens + totals.outputTokens;
    if (used < budget) return { decision: 'allow' };
    return {
      decision: 'deny',
      reason: `this group has used its daily budget of ${budget} tokens (${used} used today); it renews at midnight UTC.`,
    };
  }

  const proxy: CredentialProxy | null = deps.credential
    ? createCredentialProxy({
        upstreamBaseUrl: config.modelBaseUrl,
        credential: deps.credential,
        log: deps.log,
        now: deps.now,
        checkBudget,
        recordUsage(usage) {
          deps.store.usage.record({
            groupFolder: usage.groupFolder,
            at: usage.at,
            day: usageDay(usage.at),
            model: usage.model,
            inputTokens: usage.inputTokens,
            outputTokens: usage.outputTokens,
            cacheReadTokens: usage.cacheReadTokens,
            cacheWriteTokens: usage.cacheWriteTokens,
            runId: runs.get(usage.groupFolder)?.runId ?? null,
          });
        },
        onRefused(refusal) {
          deps.audit({
            groupFolder: refusal.groupFolder,
            actor: `agent:${refusal.groupFolder}`,
            action: 'model-api',
            decision: 'deny',
            detail: { reason: refusal.reason, path: refusal.path },
          });
          const run = runs.get(refusal.groupFolder);
          if (!run || !refusal.reason.startsWith('budget:')) return;
          run.budgetRefused = true;
          if (run.isBudgetNoticeSent) return;
          run.isBudgetNoticeSent = true;
          run.emit({
            type: 'agent-notice',
            id: 'budget-refused',
            text: `⚠️ I cannot answer right now: ${refusal.reason.replace(/^budget:\s*(Warren:\s*)?/, '')}`,
          });
        },
      })
    : null;

  // Nothing of this install can legitimately be running before its first start: clear what a dead host left.
  const orphansCleared = runtime.removeOrphans(deps.installId).then(
    (names) => {
      if (names.length > 0) log.info({ containers: names }, 'removed orphaned agent containers');
    },
    (error: unknown) => log.warn({ err: error }, 'could not look for orphaned agent containers'),
  );

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
  ): AgentExit {
    switch (exit.reason) {
      case 'timeout':
        return { status: 'crashed', reason: `ran longer than ${config.agentMaxRunMinutes} min` };
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

  /**
   * The group's mounts. Extra folders are checked against the allowlist file at every start (read fresh, so a
   * change takes effect at once); a denied or unreadable allowlist mounts nothing extra, and every denial is
   * audited.
   */
  function buildGroupMounts(group: AgentStartRequest['group']) {
    const requested = deps.store.groups.extraMounts(group.id);
    let allowlist: MountAllowlist | null = null;
    if (requested.length > 0) {
      const loaded = loadMountAllowlist(config.mountAllowlistPath);
      if (loaded.ok) allowlist = loaded.allowlist;
      else {
        log.error(
          { group: group.folder, reason: loaded.reason },
          'mount allowlist unusable: no extra mounts',
        );
        deps.audit({
          groupFolder: group.folder,
          actor: 'host',
          action: 'extra-mount',
          decision: 'deny',
          detail: { reason: loaded.reason },
        });
      }
    }
    const built = buildMounts({
      dataDir: config.dataDir,
      groupFolder: group.folder,
      isAdmin: group.isAdmin,
      extraMounts: requested,
      allowlist,
      protectedPaths: [deps.packageRoot],
    });
    for (const denial of built.denials) {
      deps.audit({
        groupFolder: group.folder,
        actor: 'host',
        action: 'extra-mount',
        decision: 'deny',
        detail: { path: denial.path, reason: denial.reason },
      });
    }
    return built;
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
    const socketDir = path.join(dataDir, 'sockets', folder);
    const cleanUp = async () => {
      ipc?.close();
      await proxy
        .closeGroup(folder)
        .catch((error: unknown) => runLog.warn({ err: error }, 'proxy close failed'));
      clearRunDirs(runDir);
      if (runs.get(folder) === run) runs.delete(folder);
    };

    try {
      const { inputDir, outputDir } = prepareRunDirs(runDir, containerUser);
      giveToContainerUser(path.join(dataDir, 'groups', folder), containerUser, 0o700);
      giveToContainerUser(path.join(dataDir, 'global'), containerUser, 0o700);
      giveToContainerUser(path.join(dataDir, 'sessions', folder), containerUser, 0o700);
      // The socket's folder stays the host's: the container may connect (0666 socket) but not replace it.
      mkdirSync(socketDir, { recursive: true, mode: 0o755 });
      chmodSync(socketDir, 0o755);
      const socketPath = path.join(socketDir, 'api.sock');
      if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
        throw new Error(
          `the proxy socket path ${socketPath} is longer than unix sockets allow (${MAX_SOCKET_PATH_BYTES} bytes); use a shorter WARREN_DATA_DIR`,
        );
      }
      await proxy.listen(folder, socketPath);

      const { mounts } = buildGroupMounts(group);
      // input/ read-only on top of the IPC folder: the agent cannot forge the host's prompts or answers. Both
      // folders are mount points of their own, so the agent cannot rename them or put a symlink in their place
      // (the host reads and deletes in output/).
      mounts.push(
        { hostPath: inputDir, containerPath: CONTAINER_PATHS.input, isReadOnly: true },
        { hostPath: outputDir, containerPath: CONTAINER_PATHS.output, isReadOnly: false },
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
          void requestStop(`misbehaving: ${reason}`);
        },
        ...(deps.taskTools ? { taskTools: deps.taskTools } : {}),
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
        limits: { memoryMb: config.agentMemoryMb, cpus: config.agentCpus, pids: config.agentPids },
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

    const exited: Promise<AgentExit> = started.exited
      .then(async (exit) => {
        state = 'ended';
        // The runner's last files (turn-end for unanswered prompts, exit) may have landed just before it ended.
        await ipc?.scan();
        await cleanUp();
        const agentExit = describeExit(exit, runnerExit, stopReason);
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
      await Promise.all([...sessions].map((session) => session.stop('Warren is shutting down')));
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
