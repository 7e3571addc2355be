// Runs inside the agent image, without Warren: the Claude Agent SDK alone, a few turns, then idle. The bench's
// reference for what the SDK itself costs. Times are CLOCK_MONOTONIC (shared with the host), one JSON line each.
import { query } from '@anthropic-ai/claude-agent-sdk';

const now = () => Number(process.hrtime.bigint()) / 1e6;
const turns = Number(process.env.PROBE_TURNS ?? 4);
const prefix = process.env.PROBE_ID ?? 'sdk';
const idleMs = Number(process.env.PROBE_IDLE_MS ?? 0);
const pauseMs = Number(process.env.PROBE_PAUSE_MS ?? 300);
const emit = (event, fields = {}) =>
  process.stdout.write(`${JSON.stringify({ event, at: now(), ...fields })}\n`);

let results = 0;
let wake = () => {};
/** Resolves once `count` results have arrived, whenever the SDK pulls the next prompt. */
const resultsReached = (count) =>
  new Promise((resolve) => {
    const check = () => {
      if (results >= count) resolve();
      else wake = check;
    };
    check();
  });

// Streaming input, as Warren's runner uses it: the session stays open between turns.
async function* prompts() {
  for (let turn = 0; turn < turns; turn++) {
    if (turn > 0) {
      await resultsReached(turn);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
    const id = `${prefix}-${turn}`;
    emit('prompt', { id });
    yield {
      type: 'user',
      message: { role: 'user', content: `hello there #bench:${id}` },
      parent_tool_use_id: null,
      session_id: '',
    };
  }
  await resultsReached(turns);
  emit('idle');
  await new Promise((resolve) => setTimeout(resolve, idleMs));
}

const bareOptions = {
  cwd: '/tmp',
  settingSources: [],
  permissionMode: 'bypassPermissions',
  allowDangerouslySkipPermissions: true,
  env: {
    ...process.env,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    DISABLE_AUTOUPDATER: '1',
  },
};

/**
 * PROBE_OPTIONS=warren: the options Warren's runner gives the SDK (its in-process MCP tools, system prompt, tool
 * limits), built by the runner's own code in the image; the key is the fake's instead of the proxy's placeholder.
 */
async function warrenOptions() {
  const { buildClaudeOptions } = await import('/opt/warren/dist/agent/src/claude-loop.js');
  const { createClaudeSpawner } = await import('/opt/warren/dist/agent/src/claude-launch.js');
  const { createWarrenTools } = await import('/opt/warren/dist/agent/src/warren-tools.js');
  const tools = createWarrenTools({
    requests: { send: async () => ({ ok: true }) },
    chat: 'bench:probe',
    isAdmin: false,
  });
  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  // No early start here (no executable given): this reference is the SDK starting Claude Code after query().
  const launch = {
    cwd: '/tmp',
    home: process.env.HOME,
    apiBaseUrl: process.env.ANTHROPIC_BASE_URL,
    additionalDirectories: [],
    executable: null,
    sdkVersion: null,
    runnerEnv: { ...process.env },
  };
  const options = buildClaudeOptions(
    {
      launch,
      spawner: createClaudeSpawner(launch, null, silent),
      tools,
      systemPromptAppend: 'You are Warren, a helpful assistant in a group chat.',
      log: silent,
    },
    null,
  );
  return { ...options, env: { ...options.env, ANTHROPIC_API_KEY: process.env.ANTHROPIC_API_KEY } };
}

const options = process.env.PROBE_OPTIONS === 'warren' ? await warrenOptions() : bareOptions;
emit('query');
const session = query({ prompt: prompts(), options });
for await (const message of session) {
  if (message.type === 'result') {
    emit('result', { isError: message.is_error });
    results += 1;
    wake();
  }
}
emit('done');
process.exit(0);
