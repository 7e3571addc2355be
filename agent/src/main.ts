// The agent runner's entry point inside the container: reads run settings, wires the parts, exits when the run ends.
import {
  CONTAINER_PATHS,
  MAX_SHORT_CHARS,
  parseRunSettings,
  TOOL_RESPONSE_TIMEOUT_MS,
} from '../../src/ipc-protocol.js';
import { createClaudeLoop } from './claude-loop.js';
import { prepareHome } from './home.js';
import { createHostRequests } from './host-requests.js';
import { createOutputWriter } from './ipc-files.js';
import { createLog } from './log.js';
import { buildSystemPromptAppend, listExtraDirectories } from './memory.js';
import { startRelay } from './relay.js';
import { startRunner } from './runner.js';
import { createWarrenTools } from './warren-tools.js';

async function main(): Promise<number> {
  const log = createLog({ level: process.env.WARREN_LOG_LEVEL === 'debug' ? 'debug' : 'info' });
  process.on('uncaughtException', (error) => {
    log.error({ err: error }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (error) => log.error({ err: error }, 'unhandled rejection'));

  const settings = parseRunSettings(process.env);
  if (!settings.ok) {
    log.error({ error: settings.error }, 'invalid run settings');
    await createOutputWriter(CONTAINER_PATHS.output)
      .write({ type: 'exit', reason: 'error', error: settings.error.slice(0, MAX_SHORT_CHARS) })
      .catch(() => {});
    return 2;
  }
  const { runId, chat, assistantName, model } = settings.value;
  log.info(
    { runId, group: settings.value.groupFolder, isResume: settings.value.sessionId !== null },
    'runner starting',
  );

  const output = createOutputWriter(CONTAINER_PATHS.output);
  const relay = await startRelay({ socketPath: CONTAINER_PATHS.apiSocket, log });
  const requests = createHostRequests({ output, timeoutMs: TOOL_RESPONSE_TIMEOUT_MS });
  const home = await prepareHome({
    home: CONTAINER_PATHS.home,
    claudeState: CONTAINER_PATHS.claudeState,
    scratch: '/tmp',
    log,
  });
  const extraDirectories = await listExtraDirectories(CONTAINER_PATHS.extra);
  const systemPromptAppend = await buildSystemPromptAppend({
    assistantName,
    chat,
    groupDirectory: CONTAINER_PATHS.group,
    globalDirectory: CONTAINER_PATHS.global,
    extraDirectories,
  });
  const loop = createClaudeLoop({
    cwd: CONTAINER_PATHS.group,
    home: home.home,
    apiBaseUrl: relay.url,
    tools: createWarrenTools({ requests, chat, isAdmin: settings.value.isAdmin }),
    systemPromptAppend,
    additionalDirectories: [CONTAINER_PATHS.global, ...extraDirectories],
    ...(model ? { model } : {}),
    log,
  });
  const runner = startRunner({
    settings: settings.value,
    loop,
    output,
    requests,
    inputDirectory: CONTAINER_PATHS.input,
    log,
    notices: home.notices,
  });
  process.once('SIGTERM', () => runner.stop('signal', 'SIGTERM'));
  process.once('SIGINT', () => runner.stop('signal', 'SIGINT'));

  const exit = await runner.done;
  await relay.close();
  log.info({ ...exit }, 'runner exiting');
  return exit.reason === 'error' ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`agent runner failed to start: ${String(error)}\n`);
    process.exit(1);
  },
);
