#!/usr/bin/env node
// The `warren` command: parses arguments and hands each command to the module that owns it.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ADMIN_CHAT, databasePath, prepareDataDir } from './app.js';
import { loadOrCreateToken } from './channels/local.js';
import { runChatClient } from './cli/chat-client.js';
import { createCliOwnerOps, performFromCli } from './cli/owner.js';
import { runPairingCommand } from './cli/pairing.js';
import { formatGroups, formatStatus } from './cli/status.js';
import { runTasksCommand } from './cli/tasks.js';
import {
  backupCommand,
  doctorCommand,
  imageCommand,
  logsCommand,
  serviceCommand,
  UsageError,
} from './cli/upkeep.js';
import { type Config, ConfigError, describeSettings, loadConfig } from './config.js';
import type { OwnerOp, OwnerOps } from './intake/owner-ops.js';
import { startHost } from './main.js';
import { parseChatAddress } from './store/records.js';
import { openStore, type Store, StoreError } from './store/store.js';

/** The package root (holds agent/ and package.json), found from this file in src/ or dist/. */
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `warren — a secure personal AI assistant

Usage: warren <command> [options]

Commands:
  start                     run Warren (the local web chat, your channels, the agents)
  chat [--chat ID]          talk to your agent from this terminal (Warren must be running)
  status                    groups, running agents, queue and outbox backlog
  groups list               registered groups and chats waiting to be registered
  groups add CHANNEL:CHAT --folder NAME [--name TEXT] [--trigger mention|always]
             [--trigger-word WORD] [--direct]
                            register a chat as a group with its own agent and folder
  groups add CHANNEL:CHAT --share FOLDER
                            let a chat share an existing group (its agent, folder and memory)
  pairing [list]            people who wrote directly and wait for approval, with their codes
  pairing approve CODE [--folder NAME | --share FOLDER]
                            let that person talk to an agent (a new group, or an existing one)
  pairing deny CODE         turn that person away (they stay ignored)
  groups remove FOLDER      unregister a group (its folder on disk is kept)
  groups mount FOLDER HOST_PATH [--as NAME] [--rw]
                            let a group's agent see a host folder (the mount allowlist must allow it)
  groups unmount FOLDER NAME
                            take an extra folder away again
  groups quota FOLDER SIZE_MB|default
                            a group's disk quota (its folder, sessions, IPC files)
  tasks [list] [--group FOLDER] [--all]
                            scheduled tasks: what runs when, and how the last run went
  tasks show ID             one task with its recent runs (duration, status, tokens, result)
  tasks pause|resume|cancel|run-now ID
                            change a task (a running Warren picks it up at once)
  image build               build the agent container image
  doctor                    check this machine and say how to fix what is missing
  service install|uninstall|status [--system]
                            run Warren as a service (systemd, launchd), restarted on failure
  backup [FILE]             a consistent copy of the database, safe while Warren runs
  logs [--follow]           the host's log (<data dir>/logs), newest last; --follow keeps printing
  help                      this text

Configuration comes from the environment, a .env file here, and <data dir>/config.json.
Run \`warren help config\` for every setting.`;

function configHelp(): string {
  const rows = describeSettings().map((s) => `  ${s.env.padEnd(30)} ${s.help} (default: ${s.default})`);
  return ['Settings (environment variable, meaning, default):', ...rows].join('\n');
}

function config(): Config {
  return loadConfig({ env: process.env, cwd: process.cwd() });
}

function withStore<T>(fn: (store: ReturnType<typeof openStore>, config: Config) => T): T {
  const cfg = config();
  prepareDataDir(cfg.dataDir);
  const store = openStore(databasePath(cfg.dataDir));
  try {
    return fn(store, cfg);
  } finally {
    store.close();
  }
}

/** Opens the store and the owner's operations (the same table as the admin chat's) for one command. */
async function withOwnerOps<T>(fn: (ops: OwnerOps, store: Store, config: Config) => Promise<T>): Promise<T> {
  const cfg = config();
  prepareDataDir(cfg.dataDir);
  const store = openStore(databasePath(cfg.dataDir));
  try {
    const ops = createCliOwnerOps({ store, config: cfg, protectedPaths: [packageRoot], now: Date.now });
    return await fn(ops, store, cfg);
  } finally {
    store.close();
  }
}

/** Prints an outcome the way every command does and returns its exit code. */
function print(outcome: { code: number; text: string }): number {
  if (outcome.code === 0) console.log(outcome.text);
  else console.error(`warren: ${outcome.text}`);
  return outcome.code;
}

async function groupsCommand(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action === 'list' || action === undefined) {
    console.log(withStore((store) => formatGroups(store)));
    return 0;
  }
  const request = parseGroupsCommand(action, rest);
  return print(await withOwnerOps((ops) => performFromCli(ops, request)));
}

/** `groups add|remove|mount|unmount|quota` as an owner operation. */
function parseGroupsCommand(action: string, args: string[]): OwnerOp {
  if (action === 'add') {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        folder: { type: 'string' },
        name: { type: 'string' },
        trigger: { type: 'string', default: 'mention' },
        'trigger-word': { type: 'string' },
        direct: { type: 'boolean', default: false },
        share: { type: 'string' },
      },
    });
    const chat = positionals[0] ? parseChatAddress(positionals[0]) : null;
    if (!chat) throw new UsageError('groups add needs a chat as CHANNEL:CHAT_ID, e.g. local:team');
    if (values.share) return { op: 'share-chat', chat, folder: values.share, isDirect: values.direct };
    if (!values.folder)
      throw new UsageError('groups add needs --folder NAME (lowercase letters, digits, - and _)');
    if (values.trigger !== 'mention' && values.trigger !== 'always') {
      throw new UsageError("--trigger must be 'mention' or 'always'");
    }
    return {
      op: 'register-chat',
      chat,
      folder: values.folder,
      name: values.name,
      isDirect: values.direct ?? false,
      trigger: values.trigger,
      triggerWord: values['trigger-word'] ?? null,
    };
  }
  if (action === 'mount' || action === 'unmount') {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { as: { type: 'string' }, rw: { type: 'boolean', default: false } },
    });
    const [folder, target] = positionals;
    if (!folder || !target) {
      throw new UsageError(
        `usage: warren groups ${action} FOLDER ${action === 'mount' ? 'HOST_PATH [--as NAME] [--rw]' : 'NAME'}`,
      );
    }
    return action === 'unmount'
      ? { op: 'unmount', folder, name: target }
      : { op: 'mount', folder, hostPath: resolve(target), as: values.as, isReadOnly: !values.rw };
  }
  if (action === 'remove') {
    if (!args[0]) throw new UsageError('groups remove needs the group folder');
    return { op: 'remove-group', folder: args[0] };
  }
  if (action === 'quota') {
    const [folder, size] = args;
    if (!folder || !size || !/^(\d{1,8}|default)$/.test(size)) {
      throw new UsageError('usage: warren groups quota FOLDER SIZE_MB|default');
    }
    return { op: 'set-quota', folder, mb: size === 'default' ? null : Number(size) };
  }
  throw new UsageError(`unknown groups command '${action}'; use list, add, remove, mount, unmount or quota`);
}

async function chatCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { chat: { type: 'string', default: ADMIN_CHAT.chatId } } });
  const cfg = config();
  if (!existsSync(join(cfg.dataDir, 'local-token'))) {
    throw new UsageError('no local chat token yet: run `warren start` first');
  }
  const token = loadOrCreateToken(cfg.dataDir);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  await runChatClient({
    baseUrl: `http://127.0.0.1:${cfg.localPort}`,
    token,
    chatId: values.chat ?? ADMIN_CHAT.chatId,
    input: process.stdin,
    output: process.stdout,
    assistantName: cfg.assistantName,
    signal: controller.signal,
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  // `warren start --help` explains, never starts: a command's --help is the usage, whatever the command.
  if (command !== undefined && (args.includes('--help') || args.includes('-h'))) {
    console.log(HELP);
    return 0;
  }
  try {
    switch (command) {
      case 'start':
        return await startHost({ config: config(), packageRoot, env: process.env, cwd: process.cwd() });
      case 'chat':
        await chatCommand(args);
        return 0;
      case 'status':
        console.log(withStore((store) => formatStatus(store, Date.now())));
        return 0;
      case 'groups':
        return await groupsCommand(args);
      case 'pairing':
        return print(await withOwnerOps((ops) => runPairingCommand(args, ops)));
      case 'tasks':
        return print(
          await withOwnerOps((ops, store) => runTasksCommand(args, { store, ops, now: Date.now() })),
        );
      case 'doctor':
        return await doctorCommand(config(), packageRoot);
      case 'logs':
        return await logsCommand(args, config().dataDir);
      case 'backup':
        return await backupCommand(args, {
          dataDir: config().dataDir,
          database: databasePath(config().dataDir),
        });
      case 'service':
        return serviceCommand(args, { dataDir: config().dataDir, cli: join(packageRoot, 'dist', 'cli.js') });
      case 'image':
        return await imageCommand(args, config(), packageRoot);
      case '--version':
      case 'version': {
        const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
          version: string;
        };
        console.log(pkg.version);
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(args[0] === 'config' ? configHelp() : HELP);
        return 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`warren: ${error.message}\nRun \`warren help\` for usage.`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof StoreError) {
      console.error(`warren: ${error.message}`);
      return 1;
    }
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`warren: ${error.message}\nRun \`warren help\` for usage.`);
      return 2;
    }
    throw error;
  }
}

// Run only when executed, not when imported by tests.
if (
  process.argv[1] &&
  fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1])
) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error('warren: unexpected error:', error);
      process.exitCode = 1;
    },
  );
}
