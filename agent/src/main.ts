// The agent runner's entry point inside the container. It starts Claude Code first (claude-launch.ts), with only
// light modules loaded, then loads the rest (zod, the SDK) while Claude Code boots, and hands over to run-agent.ts.
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';
import { CONTAINER_PATHS, RUN_ENV } from '../../src/protocol/paths.js';
import { createClaudeSpawner, findClaudeExecutable, findSdkVersion } from './claude-launch.js';
import { createLog, type Log } from './log.js';
import { listExtraDirectories } from './memory.js';
import { startRelay } from './relay.js';

async function main(): Promise<number> {
  const log = createLog(process.env.WARREN_LOG_LEVEL === 'debug' ? 'debug' : 'info');
  process.on('uncaughtException', (error) => {
    log.error({ err: error }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => log.error({ err: error }, 'unhandled rejection'));

  const relay = await startRelay({ socketPath: CONTAINER_PATHS.apiSocket, log });
  const egress = await startRelay({ socketPath: CONTAINER_PATHS.egressSocket, log });
  // HOME must be ready before Claude Code starts: it reads and writes ~/.claude.json at once.
  const { home, notices } = await prepareHome(log);
  const extraDirectories = await listExtraDirectories(CONTAINER_PATHS.extra);
  const trust = await trustEgressCa(log);
  const launch = {
    cwd: CONTAINER_PATHS.group,
    home,
    apiBaseUrl: relay.url,
    proxyUrl: egress.url,
    trust,
    additionalDirectories: [CONTAINER_PATHS.global, ...extraDirectories],
    model: process.env[RUN_ENV.model] || undefined,
    executable: findClaudeExecutable(),
    sdkVersion: findSdkVersion(),
    runnerEnv: { ...process.env },
  };
  // The run settings are checked only after zod loads (run-agent.ts); if they are invalid, this process is
  // stopped before the SDK ever talks to it. The session id goes into one argv element, never through a shell.
  const spawner = createClaudeSpawner(launch, process.env[RUN_ENV.sessionId] || null, log);
  try {
    const { runAgent } = await import('./run-agent.js');
    return await runAgent({ log, notices, extraDirectories, launch, spawner });
  } finally {
    spawner.dispose();
    await relay.close();
    await egress.close();
  }
}

/**
 * The HOME for Claude Code, and problems for the host (a misconfigured mount). When HOME is not writable (a tmpfs
 * without uid=1000), every Claude Code start takes seconds longer: a HOME in /tmp, whose .claude/projects links to
 * the transcripts, is used instead. Never throws.
 */
async function prepareHome(log: Log): Promise<{ home: string; notices: string[] }> {
  const { home, claudeState } = CONTAINER_PATHS;
  const notices: string[] = [];
  if (!(await isWritable(claudeState))) {
    notices.push(`${claudeState} is not writable by the agent user: sessions will not persist`);
  }
  if (await isWritable(home)) return { home, notices };
  const fallback = '/tmp/warren-home';
  try {
    await fs.mkdir(path.join(fallback, '.claude'), { recursive: true, mode: 0o700 });
    await fs.symlink(claudeState, path.join(fallback, '.claude', 'projects'));
    notices.push(`${home} is not writable: mount a tmpfs there owned by uid 1000; using ${fallback} instead`);
    return { home: fallback, notices };
  } catch (error) {
    log.warn({ err: error, home }, 'cannot make a fallback HOME');
    notices.push(`${home} is not writable: mount a tmpfs there owned by uid 1000`);
    return { home, notices };
  }
}

/** The gateway's CA and the system's CAs in one file in /tmp (the root is read-only); null without the CA. */
async function trustEgressCa(log: Log): Promise<{ ca: string; bundle: string } | null> {
  const ca = CONTAINER_PATHS.egressCa;
  try {
    const own = await fs.readFile(ca, 'utf8');
    const system = await fs.readFile('/etc/ssl/certs/ca-certificates.crt', 'utf8').catch(() => '');
    const bundle = '/tmp/warren-ca-bundle.pem';
    await fs.writeFile(bundle, `${system}\n${own}`, { mode: 0o644 });
    return { ca, bundle };
  } catch (error) {
    log.warn({ err: error }, 'no egress CA: hosts with secrets added by the gateway will not be trusted');
    return null;
  }
}

const isWritable = (directory: string) =>
  fs.access(directory, constants.W_OK | constants.X_OK).then(
    () => true,
    () => false,
  );

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`agent runner failed to start: ${String(error)}\n`);
    process.exit(1);
  },
);
