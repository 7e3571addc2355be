// `warren start`: builds the real parts (logger, channels, container runner), starts the host, handles signals.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareDataDir, startWarren, type Warren } from './app.js';
import { createChannels } from './channels/index.js';
import { loadOrCreateToken } from './channels/local.js';
import { type Config, dotEnvFingerprint, STARTED_WITH } from './config.js';
import { ensureAgentImage } from './image/agent-image.js';
import { createRuntime } from './image/engine-setup.js';
import { createImageEngine } from './image/image-build.js';
import { createLogger } from './log.js';
import {
  type ContainerRunner,
  type ContainerRunnerDeps,
  createContainerRunner,
} from './sandbox/container-runner.js';
import { readModelCredential } from './sandbox/credentials.js';
import { lockDataDir } from './store/lock.js';
import type { AgentRunner, Channel } from './types.js';

export interface StartOptions {
  config: Config;
  packageRoot: string;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** Names this install's containers: derived from the data directory, so two installs never touch each other's. */
export function installIdFor(dataDir: string): string {
  return createHash('sha256').update(dataDir).digest('hex').slice(0, 10);
}

/** What a host is built from: the container runner's own parts (the host context aside), and the extras below. */
export interface HostParts
  extends Pick<
    ContainerRunnerDeps,
    'config' | 'log' | 'runtime' | 'installId' | 'credential' | 'packageRoot' | 'agentEnv' | 'resolveName'
  > {
  localToken: string;
  /** Channels besides the configured ones: the tests' and the bench's fakes. */
  extraChannels?: Channel[];
  /** Wraps the agent runner the queue uses (the bench keeps each group's session). */
  wrapRunner?(runner: AgentRunner): AgentRunner;
}

/**
 * The one wiring of a host from its parts: `warren start`, the end-to-end tests and the benchmark all start
 * Warren through here, so what they test and measure is what runs.
 */
export async function startHostParts(parts: HostParts): Promise<{ warren: Warren; runner: ContainerRunner }> {
  const { localToken, extraChannels = [], wrapRunner, ...runnerParts } = parts;
  const { config, log } = parts;
  let runner: ContainerRunner | null = null;
  const warren = await startWarren({
    config,
    log,
    protectedPaths: [parts.packageRoot],
    createChannels: (context) => [
      ...extraChannels,
      ...createChannels({ ...context, config, log, localToken }),
    ],
    createRunner: (context) => {
      runner = createContainerRunner({ ...context, ...runnerParts });
      return wrapRunner ? wrapRunner(runner) : runner;
    },
  });
  if (!runner) throw new Error('startWarren did not create the runner');
  return { warren, runner };
}

/** Runs Warren until SIGINT/SIGTERM. Resolves with the process exit code. */
export async function startHost(options: StartOptions): Promise<number> {
  const { config } = options;
  // First: a second start on the same data must touch nothing, its log file included (src/store/lock.ts).
  const lock = lockDataDir(config.dataDir);
  // What .env held when this host read it: `warren doctor` says when a change there needs a restart.
  const salt = randomBytes(16).toString('hex');
  const startedWith = {
    pid: process.pid,
    cwd: options.cwd,
    salt,
    keys: dotEnvFingerprint(options.cwd, salt),
  };
  writeFileSync(join(config.dataDir, STARTED_WITH), JSON.stringify(startedWith), { mode: 0o600 });
  const log = await createLogger({
    level: config.logLevel,
    isPretty: Boolean(process.stderr.isTTY),
    logDir: join(config.dataDir, 'logs'),
  });
  // Signal handlers first: a SIGTERM during start-up must still stop cleanly (after start-up completes).
  let warren: Warren | null = null;
  let closeRunner: () => Promise<void> = async () => {};
  let signalled: string | null = null;
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });
  const stop = (signal: string) => {
    if (signalled !== null) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    signalled = signal;
    if (!warren) return; // start-up finishes first, then stops
    log.info({ signal }, 'stopping');
    warren
      .stop()
      .then(() => closeRunner())
      .then(
        () => resolveStopped(0),
        (error: unknown) => {
          log.error({ err: error }, 'error while stopping');
          resolveStopped(1);
        },
      );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));

  // The host works in agents' folders only through /proc/self/fd (safe-fs.ts); elsewhere it would have to trust paths.
  if (!existsSync('/proc/self/fd')) {
    throw new Error(
      `Warren's host needs Linux (/proc/self/fd), not ${process.platform}; run it in a Linux VM`,
    );
  }
  prepareDataDir(config.dataDir);
  const localToken = loadOrCreateToken(config.dataDir);
  const credential = readModelCredential(options.env, options.cwd);
  if (!credential) {
    log.warn(
      'no ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN: agents will fail until one is set (see `warren doctor`)',
    );
  }
  const runtime = createRuntime({ kind: config.runtime }, { log });
  const installId = installIdFor(config.dataDir);
  // The first start builds the agent image (minutes, once); later starts find it and go on at once.
  const image = await ensureAgentImage({
    images: createImageEngine({ kind: config.runtime }),
    config,
    packageRoot: options.packageRoot,
    log,
  });
  if (!image.ok)
    log.error(
      { reason: image.reason },
      'agent image unavailable: agents will fail until `warren image build` works',
    );

  const { warren: host, runner } = await startHostParts({
    config,
    log,
    runtime,
    installId,
    credential,
    packageRoot: options.packageRoot,
    localToken,
  });
  closeRunner = async () => {
    await runner.close();
    lock.release();
  };

  warren = host;
  if (signalled !== null) {
    const signal = signalled;
    signalled = null;
    stop(signal);
    return stopped;
  }
  const local = host.channels.get('local') as { url?: string } | undefined;
  if (local?.url) {
    const url = `${local.url}/#token=${localToken}`;
    process.stdout.write(
      `\n  Warren is running. Chat with ${config.assistantName}:\n\n    ${url}\n\n  or in this terminal: warren chat (npm run warren -- chat)\n  Stop with Ctrl-C.\n\n`,
    );
  } else {
    process.stdout.write('\n  Warren is running (local chat disabled). Stop with Ctrl-C.\n\n');
  }

  return stopped;
}
