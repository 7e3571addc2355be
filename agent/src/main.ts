// The agent runner's entry point inside the container. It starts Claude Code first (claude-launch.ts), with only
// node built-ins and light modules loaded, then loads the rest of the runner (zod, the SDK) while Claude Code
// boots, and hands over to run-agent.ts.

import { CONTAINER_PATHS, RUN_ENV } from '../../src/protocol/paths.js';
import { createClaudeSpawner, findClaudeExecutable, findSdkVersion } from './claude-launch.js';
import { prepareHome } from './home.js';
import { createLog } from './log.js';
import { listExtraDirectories } from './memory.js';
import { startRelay } from './relay.js';

async function main(): Promise<number> {
  const log = createLog({ level: process.env.WARREN_LOG_LEVEL === 'debug' ? 'debug' : 'info' });
  process.on('uncaughtException', (error) => {
    log.error({ err: error }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => log.error({ err: error }, 'unhandled rejection'));

  const relay = await startRelay({ socketPath: CONTAINER_PATHS.apiSocket, log });
  // HOME must be ready before Claude Code starts: it reads and writes ~/.claude.json at once.
  const home = await prepareHome({
    home: CONTAINER_PATHS.home,
    claudeState: CONTAINER_PATHS.claudeState,
    scratch: '/tmp',
    log,
  });
  const extraDirectories = await listExtraDirectories(CONTAINER_PATHS.extra);
  const model = process.env[RUN_ENV.model];
  const launch = {
    cwd: CONTAINER_PATHS.group,
    home: home.home,
    apiBaseUrl: relay.url,
    additionalDirectories: [CONTAINER_PATHS.global, ...extraDirectories],
    ...(model ? { model } : {}),
    executable: findClaudeExecutable(),
    sdkVersion: findSdkVersion(),
    runnerEnv: { ...process.env },
  };
  // The run settings are checked only after zod loads (run-agent.ts); if they are invalid, this process is
  // stopped before the SDK ever talks to it. The session id goes into one argv element, never through a shell.
  const spawner = createClaudeSpawner(launch, process.env[RUN_ENV.sessionId] || null, log);
  try {
    const { runAgent } = await import('./run-agent.js');
    return await runAgent({ log, relay, home, extraDirectories, launch, spawner });
  } finally {
    spawner.dispose();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`agent runner failed to start: ${String(error)}\n`);
    process.exit(1);
  },
);
