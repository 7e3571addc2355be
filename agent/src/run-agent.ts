// The runner once Claude Code is starting (main.ts): reads the run settings, wires the parts, ends with the run.
import { CONTAINER_PATHS, parseRunSettings, TOOL_RESPONSE_TIMEOUT_MS } from '../../src/protocol/ipc.js';
import type { ClaudeLaunch, ClaudeSpawner } from './claude-launch.js';
import { createClaudeLoop } from './claude-loop.js';
import { createHostRequests } from './host-requests.js';
import { createOutputWriter, truncate } from './ipc-files.js';
import type { Log } from './log.js';
import { buildSystemPromptAppend } from './memory.js';
import { startRunner } from './runner.js';
import { createWarrenTools } from './warren-tools.js';

export async function runAgent(start: {
  log: Log;
  /** Problems found while starting (main.ts, prepareHome), for the host. */
  notices: string[];
  extraDirectories: string[];
  launch: ClaudeLaunch;
  spawner: ClaudeSpawner;
}): Promise<number> {
  const { log, notices, extraDirectories, launch, spawner } = start;
  const output = createOutputWriter(CONTAINER_PATHS.output);
  const settings = parseRunSettings(process.env);
  if (!settings.ok) {
    // The early-started Claude Code is stopped by main.ts once this returns.
    log.error({ error: settings.error }, 'invalid run settings');
    await output.write({ type: 'exit', reason: 'error', error: truncate(settings.error) }).catch(() => {});
    return 2;
  }
  const { runId, groupFolder, chat, isAdmin, sessionId } = settings.value;
  log.info({ runId, group: groupFolder, isResume: sessionId !== null }, 'runner starting');

  const requests = createHostRequests({ output, timeoutMs: TOOL_RESPONSE_TIMEOUT_MS });
  const tools = createWarrenTools({ requests, chat, isAdmin });
  const systemPromptAppend = await buildSystemPromptAppend({
    ...settings.value,
    groupDirectory: CONTAINER_PATHS.group,
    globalDirectory: CONTAINER_PATHS.global,
    extraDirectories,
  });
  const remoteMcp = settings.value.mcpServers;
  const loop = createClaudeLoop({ launch, spawner, tools, remoteMcp, systemPromptAppend, log });
  const runner = startRunner({
    settings: settings.value,
    loop,
    output,
    requests,
    inputDirectory: CONTAINER_PATHS.input,
    log,
    notices,
  });
  process.once('SIGTERM', () => runner.stop('signal', 'SIGTERM'));
  process.once('SIGINT', () => runner.stop('signal', 'SIGINT'));

  const exit = await runner.done;
  log.info({ ...exit }, 'runner exiting');
  return exit.reason === 'error' ? 1 : 0;
}
