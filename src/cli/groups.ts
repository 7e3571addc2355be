// `warren groups list|add|remove|mount|unmount|quota|budget|export`: parsing and printing only; every change is an owner
// operation (intake/owner-ops.ts, authorized and audited there).
import { createWriteStream, openSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { parseBudget } from '../intake/admin-commands.js';
import type { OwnerOp } from '../intake/owner-ops.js';
import { parseChatAddress } from '../store/records.js';
import { exportGroupCommand, purgeGroupCommand } from './groups-data.js';
import { performFromCli } from './owner.js';
import { type Cli, type CliHost, UsageError } from './program.js';
import { formatGroups } from './status.js';

interface AddOptions {
  folder?: string;
  name?: string;
  trigger: 'mention' | 'always';
  triggerWord?: string;
  direct?: boolean;
  share?: string;
}

function addRequest(address: string, options: AddOptions): OwnerOp {
  const chat = parseChatAddress(address);
  if (!chat) throw new UsageError('groups add needs a chat as CHANNEL:CHAT_ID, e.g. local:team');
  const isDirect = options.direct ?? false;
  if (options.share) return { op: 'share-chat', chat, folder: options.share, isDirect };
  if (!options.folder) {
    throw new UsageError(
      'groups add needs --folder NAME (lowercase letters, digits, - and _) or --share FOLDER',
    );
  }
  return {
    op: 'register-chat',
    chat,
    folder: options.folder,
    name: options.name,
    isDirect,
    trigger: options.trigger,
    triggerWord: options.triggerWord ?? null,
  };
}

export function registerGroups(program: Command, cli: Cli, host: CliHost): void {
  const perform = (request: OwnerOp) => host.withOwnerOps(({ ops }) => performFromCli(ops, request));
  const groups = program
    .command('groups')
    .description('registered groups: add, remove, extra folders, quotas');

  groups
    .command('list', { isDefault: true })
    .description('registered groups, and chats waiting to be registered')
    .action(cli.action(() => host.withStore((store) => ({ code: 0, text: formatGroups(store) }))));

  groups
    .command('add')
    .description(
      'register a chat as a group with its own agent and folder, or (--share) let it share an existing group',
    )
    .argument('<chat>', 'CHANNEL:CHAT_ID, e.g. local:team or telegram:-1001234')
    .option('--folder <name>', "the new group's folder (lowercase letters, digits, - and _)")
    .option('--name <text>', 'a display name')
    .addOption(
      new Option('--trigger <when>', 'answer every message, or only when named')
        .choices(['mention', 'always'])
        .default('mention'),
    )
    .option('--trigger-word <word>', 'the name that triggers it (default: the assistant name)')
    .option('--direct', 'a one-to-one chat')
    .addOption(
      new Option(
        '--share <folder>',
        "share this group's agent, folder and memory (never the admin group)",
      ).conflicts('folder'),
    )
    .action(cli.action((chat: string, options: AddOptions) => perform(addRequest(chat, options))));

  groups
    .command('remove')
    .description(
      'unregister a group and delete its stored messages, its agent stopped at once (its folder on disk is kept); ' +
        'with --purge, delete everything of it',
    )
    .argument('<folder>', 'the group folder')
    .option('--purge', 'also delete its folder, session state, tasks and usage, after you type its name')
    .addOption(new Option('--yes', 'purge without asking (for scripts)').implies({ purge: true }))
    .action(
      cli.action((folder: string, options: { purge?: boolean; yes?: boolean }) => {
        if (!options.purge) return perform({ op: 'remove-group', folder });
        const io = { input: process.stdin, output: process.stderr, isConfirmed: options.yes };
        return host.withOwnerOps(({ ops }) => purgeGroupCommand(ops, folder, io));
      }),
    );

  groups
    .command('export')
    .description(
      'everything stored of a group (messages, replies, tasks and runs, usage, audit) as JSON lines',
    )
    .argument('<folder>', 'the group folder')
    .option('--out <file>', 'write to a new file (0600) instead of stdout')
    .action(
      cli.action(async (folder: string, options: { out?: string }) => {
        // The export holds a client's messages: a new file only (never over another), readable by the owner alone.
        const file = options.out && resolve(options.out);
        let out: Writable;
        try {
          out = file
            ? createWriteStream('', { fd: openSync(file, 'wx', 0o600) })
            : new Writable({ write: (chunk, _encoding, done) => done(void cli.io.writeOut(String(chunk))) });
        } catch (error) {
          return { code: 1, text: `cannot write the export to ${file}: ${(error as Error).message}` };
        }
        const result = await host.withStore((store) => exportGroupCommand(store, folder, out));
        out.end();
        await finished(out).catch(() => {});
        if (file && result.code !== 0) rmSync(file, { force: true }); // no half export left behind
        // stdout may be the data: the summary goes to stderr.
        cli.io.writeErr(`${result.code === 0 ? '' : 'warren: '}${result.text}\n`);
        return result.code;
      }),
    );

  groups
    .command('budget')
    .description("a group's budget for model calls, per day and per calendar month (in WARREN_CURRENCY)")
    .argument('<folder>', 'the group folder')
    .option('--daily <amount>', "an amount like 2.50, 0 for no limit, or 'default'")
    .option('--monthly <amount>', "an amount like 40, 0 for no limit, or 'default'")
    .action(
      cli.action((folder: string, options: { daily?: string; monthly?: string }) => {
        if (options.daily === undefined && options.monthly === undefined)
          throw new UsageError('groups budget needs --daily, --monthly or both');
        try {
          const daily = parseBudget(options.daily);
          const monthly = parseBudget(options.monthly);
          return perform({ op: 'set-budget', folder, daily, monthly });
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
      }),
    );

  groups
    .command('mount')
    .description(
      "let a group's agent see a host folder at /workspace/extra/NAME (the mount allowlist must allow it)",
    )
    .argument('<folder>', 'the group folder')
    .argument('<host-path>', 'the host folder')
    .option('--as <name>', 'the name under /workspace/extra (default: the folder name)')
    .option('--rw', 'writable (read-only by default; the allowlist must allow writing)')
    .action(
      cli.action((folder: string, hostPath: string, options: { as?: string; rw?: boolean }) =>
        perform({
          op: 'mount',
          folder,
          hostPath: resolve(hostPath),
          as: options.as,
          isReadOnly: !options.rw,
        }),
      ),
    );

  groups
    .command('unmount')
    .description('take an extra folder away again')
    .argument('<folder>', 'the group folder')
    .argument('<name>', 'the name under /workspace/extra')
    .action(cli.action((folder: string, name: string) => perform({ op: 'unmount', folder, name })));

  groups
    .command('quota')
    .description("a group's disk quota (its folder, session state and IPC files)")
    .argument('<folder>', 'the group folder')
    .argument('<size>', 'SIZE_MB, or default for WARREN_DISK_QUOTA_MB')
    .action(
      cli.action((folder: string, size: string) => {
        if (!/^(\d{1,8}|default)$/.test(size)) {
          throw new UsageError(`the quota must be a size in MB or 'default', not '${size}'`);
        }
        return perform({ op: 'set-quota', folder, mb: size === 'default' ? null : Number(size) });
      }),
    );
}
