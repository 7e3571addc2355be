#!/usr/bin/env node
// The `warren` command: builds the commander program from each area's commands (src/cli/) and runs it.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { ADMIN_CHAT, databasePath, prepareDataDir } from './app.js';
import { LOCAL_TOKEN_FILE, loadOrCreateToken } from './channels/local.js';
import { registerAudit } from './cli/audit.js';
import { runChatClient } from './cli/chat-client.js';
import { registerGroups } from './cli/groups.js';
import { registerMcp } from './cli/mcp.js';
import { checkModelEndpoint } from './cli/model-check.js';
import { registerNet } from './cli/net.js';
import { createCliOwnerOps, performFromCli } from './cli/owner.js';
import { registerPairing } from './cli/pairing.js';
import { Cli, type CliHost, type CliIo, runProgram, terminalIo, UsageError } from './cli/program.js';
import { registerSecrets } from './cli/secrets.js';
import { formatStatus } from './cli/status.js';
import { registerTasks } from './cli/tasks.js';
import { registerUpkeep } from './cli/upkeep.js';
import { registerUsage } from './cli/usage.js';
import { type Config, describeSettings, loadConfig } from './config.js';
import { startHost } from './main.js';
import { readModelCredential } from './sandbox/credentials.js';
import { openStore } from './store/store.js';

/** The package root (holds agent/ and package.json), found from this file in src/ or dist/. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const FOOTER = `
Configuration comes from the environment, a .env file here, and <data dir>/config.json.
Run \`warren help config\` for every setting, \`warren COMMAND --help\` for a command's usage.

Exit codes: 0 done; 1 refused or failed (e.g. no such group, Warren not running, a bad setting); 2 usage error.`;

function configHelp(): string {
  const rows = describeSettings().map((s) => `  ${s.env.padEnd(30)} ${s.help} (default: ${s.default})`);
  return ['Settings (environment variable, meaning, default):', ...rows].join('\n');
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Settings, the store and the owner's operations, opened only when an action runs. */
function createHost(): CliHost {
  const config = () => loadConfig({ env: process.env, cwd: process.cwd() });
  const withStore: CliHost['withStore'] = async (fn) => {
    const cfg = config();
    prepareDataDir(cfg.dataDir);
    const store = openStore(databasePath(cfg.dataDir));
    try {
      return await fn(store, cfg);
    } finally {
      store.close();
    }
  };
  return {
    config,
    withStore,
    withOwnerOps: (fn) =>
      withStore((store, cfg) => {
        const ops = createCliOwnerOps({ store, config: cfg, protectedPaths: [packageRoot], now: Date.now });
        return fn({ store, ops, now: Date.now() });
      }),
    now: Date.now,
  };
}

async function chat(cli: Cli, cfg: Config, chatId: string): Promise<number> {
  if (!existsSync(join(cfg.dataDir, LOCAL_TOKEN_FILE))) {
    cli.complain(
      `Warren has not run on ${cfg.dataDir} yet (no local chat token): run \`warren start\` first`,
    );
    return 1;
  }
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  // A server that cannot be reached rejects with a ChatClientError: one line, exit 1 (cli/program.ts).
  await runChatClient({
    baseUrl: `http://127.0.0.1:${cfg.localPort}`,
    token: loadOrCreateToken(cfg.dataDir),
    chatId,
    input: process.stdin,
    output: process.stdout,
    assistantName: cfg.assistantName,
    signal: controller.signal,
  });
  return 0;
}

/** The whole `warren` program; each area of src/cli/ registers its own commands. */
export function buildProgram(cli: Cli, host: CliHost): Command {
  const program = new Command('warren')
    .description('a secure personal AI assistant')
    .version(packageVersion(), '-V, --version', 'print the version')
    .addHelpText('after', FOOTER);

  program
    .command('start')
    .description('run Warren (the local web chat, your channels, the agents); Ctrl-C stops it cleanly')
    .action(
      cli.action(() =>
        startHost({ config: host.config(), packageRoot, env: process.env, cwd: process.cwd() }),
      ),
    );
  program
    .command('chat')
    .description('talk to your agent from this terminal (Warren must be running)')
    .option('--chat <id>', 'the local chat to talk in', ADMIN_CHAT.chatId)
    .action(cli.action((options: { chat: string }) => chat(cli, host.config(), options.chat)));
  program
    .command('status')
    .description('groups, running agents, queue and outbox backlog')
    .action(
      cli.action(() =>
        host.withStore(async (store, config) => {
          // Through the same proxy code and credential the agents use: can they reach the model right now?
          const credential = readModelCredential(process.env, process.cwd());
          const model = await checkModelEndpoint(config, credential, 5000);
          const line = `Model API: ${model.isOk ? '' : '✘ '}${model.detail}${model.fix ? ` (fix: ${model.fix})` : ''}`;
          return { code: 0, text: `${formatStatus(store, host.now())}\n${line}` };
        }),
      ),
    );
  for (const [name, op, description] of [
    [
      'stop-all',
      'emergency-stop',
      'emergency stop: every agent stops at once, nothing starts until resume-all',
    ],
    ['resume-all', 'resume-all', 'lift the emergency stop: the work held meanwhile goes on'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .action(cli.action(() => host.withOwnerOps(({ ops }) => performFromCli(ops, { op }))));
  }
  registerGroups(program, cli, host);
  registerNet(program, cli, host);
  registerSecrets(program, cli, host);
  registerMcp(program, cli, host);
  registerPairing(program, cli, host);
  registerTasks(program, cli, host);
  registerAudit(program, cli, host);
  registerUsage(program, cli, host);
  registerUpkeep(program, cli, { config: host.config, packageRoot, databasePath });

  program
    .command('version')
    .description('print the version')
    .action(cli.action(() => ({ code: 0, text: packageVersion() })));
  program
    .command('help') // ours, not commander's: it also knows `help config` and `help groups add`
    .description("this text; `help COMMAND` for a command's usage, `help config` for every setting")
    .argument('[command...]', 'a command, e.g. groups add')
    .action(
      cli.action((names: string[]) => {
        if (names.length === 1 && names[0] === 'config') return { code: 0, text: configHelp() };
        let command = program;
        for (const [index, name] of names.entries()) {
          const sub = command.commands.find((candidate) => candidate.name() === name);
          if (!sub) throw new UsageError(`unknown command '${names.slice(0, index + 1).join(' ')}'`);
          command = sub;
        }
        command.outputHelp();
        return 0;
      }),
    );
  return program;
}

/** Runs `warren ARGV` and returns its exit code (it never exits the process: tests call it). */
export async function main(argv: string[], io: CliIo = terminalIo): Promise<number> {
  const cli = new Cli(io);
  const isDebug = ['debug', 'trace'].includes(process.env.WARREN_LOG_LEVEL ?? '');
  // A bare `warren` explains itself, on stdout, as a success.
  return runProgram(buildProgram(cli, createHost()), cli, argv.length === 0 ? ['help'] : argv, { isDebug });
}

// Run only when executed, not when imported by tests.
if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
