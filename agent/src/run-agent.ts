// The runner once Claude Code is starting (main.ts): reads the run settings, wires the parts, ends with the run.
import {
  CONTAINER_PATHS,
  MAX_SHORT_CHARS,
  parseRunSettings,
  TOOL_RESPONSE_TIMEOUT_MS,
} from '../../src/protocol/ipc.js';
import type { ClaudeLaunch, ClaudeSpawner } from './claude-launch.js';
import { createClaudeLoop } from './claude-loop.js';
import type { PreparedHome } from './home.js';
import { createHostRequests } from './host-requests.js';
import { createOutputWriter } from './ipc-files.js';
import type { Log } from './log.js';
import { buildSystemPromptAppend } from './memory.js';
import type { Relay } from './relay.js';
import { startRunner } from './runner.js';
import { createWarrenTools } from './warren-tools.js';

export interface AgentStart {
  log: Log;
  relay: Relay;
  home: PreparedHome;
  extraDirectories: string[];
  launch: ClaudeLaunch;
  spawner: ClaudeSpawner;
}

export async function runAgent(start: AgentStart): Promise<number> {
  const { log, relay, spawner } = start;
  const output = createOutputWriter(CONTAINER_PATHS.output);
  const settings = parseRunSettings(process.env);
  if (!settings.ok) {
    // The early-started Claude Code is stopped by main.ts once this returns.
    log.error({ error: settings.error }, 'invalid run settings');
    await output
      .write({ type: 'exit', reason: 'error', error: settings.error.slice(0, MAX_SHORT_CHARS) })
      .catch(() => {});
    await relay.close();
    return 2;
  }
  const { runId, chat, assistantName } = settings.value;
  log.info(
    { runId, group: settings.value.groupFolder, isResume: settings.value.sessionId !== null },
    'runner starting',
  );

  const requests = createHostRequests({ output, timeoutMs: TOOL_RESPONSE_TIMEOUT_MS });
  const systemPromptAppend = await buildSystemPromptAppend({
    assistantName,
    chat,
    groupDirectory: CONTAINER_PATHS.group,
    globalDirectory: CONTAINER_PATHS.global,
    extraDirectories: start.extraDirectories,
    isAdmin: settings.value.isAdmin,
  });
  const loop = createClaudeLoop({
    launch: start.launch,
    spawner,
    tools: createWarrenTools({ requests, chat, isAdmin: settings.value.isAdmin }),
    systemPromptAppend,
    log,
  });
  const runner = startRunner({
    settings: settings.value,
    loop,
    output,
    requests,
    inputDirectory: CONTAINER_PATHS.input,
    log,
    notices: start.home.notices,
  });
  process.once('SIGTERM', () => runner.stop('signal', 'SIGTERM'));
  process.once('SIGINT', () => runner.stop('signal', 'SIGINT'));

  const exit = await runner.done;
  await relay.close();
  log.info({ ...exit }, 'runner exiting');
  return exit.reason === 'error' ? 1 : 0;
}
