// `warren secrets set|list|remove|bind|unbind`: the owner's secrets, which the egress gateway adds to a group's
// requests to one host so the agent never sees them. Parsing and printing only; each is an owner operation
// (intake/owner-ops.ts, authorized and audited there). A value comes in on stdin only: never as an argument, which
// the shell's history and the process list would show.
import type { Command } from 'commander';
import { parseHostPort } from '../intake/net-ops.js';
import type { OwnerOp, OwnerOps } from '../intake/owner-ops.js';
import { performFromCli } from './owner.js';
import { type Cli, type CliOutcome, runToOutcome, UsageError } from './program.js';

/** Where `set` reads the value: the process's stdin, or a stand-in in tests. */
export interface SecretInput {
  isTTY: boolean;
  /** All of it, to its end. */
  read(): Promise<string>;
}

/** Read only when `set` runs: touching process.stdin earlier would open it for every command. */
const stdinInput: SecretInput = {
  get isTTY() {
    return process.stdin.isTTY === true;
  },
  read: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  },
};

/** Runs `warren secrets ARGS` over the given operations and input; code 0 (text for stdout), 1 refused, 2 usage. */
export function runSecretsCommand(args: string[], ops: OwnerOps, input: SecretInput): Promise<CliOutcome> {
  return runToOutcome(
    (program, cli) => registerSecrets(program, cli, { withOwnerOps: async (fn) => fn({ ops }) }, input),
    ['secrets', ...args],
  );
}

const hostPort = (text: string) => {
  try {
    return parseHostPort(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
};

/** Only the owner's operations are needed (a CliHost is one). */
interface SecretsHost {
  withOwnerOps<T>(fn: (context: { ops: OwnerOps }) => T | Promise<T>): Promise<T>;
}

export function registerSecrets(
  program: Command,
  cli: Cli,
  host: SecretsHost,
  input: SecretInput = stdinInput,
): void {
  const perform = (request: OwnerOp) => host.withOwnerOps(({ ops }) => performFromCli(ops, request));
  const secrets = program
    .command('secrets')
    .description(
      "secrets the egress gateway adds to a group's requests to one host (the agent never sees them)",
    );
  secrets
    .command('set')
    .description('store a secret, or replace its value; the value is read from stdin')
    .argument('<name>', 'a letter, then letters, digits or _ (e.g. GITHUB_TOKEN)')
    .action(
      cli.action(async (name: string) => {
        const pipe = `pipe the value in: printf %s "$VALUE" | warren secrets set ${name}`;
        // Typed at a terminal it would echo, and end up in the scrollback.
        if (input.isTTY) throw new UsageError(pipe);
        const value = (await input.read()).replace(/\r?\n$/, '');
        if (value === '') throw new UsageError(`no value came on stdin: ${pipe}`);
        return perform({ op: 'secret-set', name, value });
      }),
    );
  secrets
    .command('list')
    .description('the secrets by name (never their values), and the groups and hosts each goes to')
    .action(cli.action(() => perform({ op: 'secret-list' })));
  secrets
    .command('remove')
    .description('forget a secret (refused while bound, unless --force)')
    .argument('<name>', 'the secret')
    .option('--force', 'also remove the bindings that use it')
    .action(
      cli.action((name: string, options: { force?: boolean }) =>
        perform({ op: 'secret-remove', name, force: options.force ?? false }),
      ),
    );
  secrets
    .command('bind')
    .description(
      "add the secret to a group's requests to one host, in a header (the host must also be allowed: warren net allow)",
    )
    .argument('<name>', 'the secret')
    .argument('<folder>', 'the group folder')
    .argument('<host>', 'HOST[:PORT] (port 443 when not given): one name or an IP address, not *.suffix')
    .option('--header <name>', 'the header to set', 'Authorization')
    .option('--template <text>', 'its value, {secret} standing for the secret', 'Bearer {secret}')
    .action(
      cli.action(
        (name: string, folder: string, text: string, options: { header: string; template: string }) =>
          perform({ op: 'secret-bind', name, folder, ...hostPort(text), ...options }),
      ),
    );
  secrets
    .command('unbind')
    .description("stop adding secrets to a group's requests to a host (one header with --header, else all)")
    .argument('<folder>', 'the group folder')
    .argument('<host>', 'HOST[:PORT] (port 443 when not given)')
    .option('--header <name>', 'only this header')
    .action(
      cli.action((folder: string, text: string, options: { header?: string }) =>
        perform({ op: 'secret-unbind', folder, ...hostPort(text), header: options.header }),
      ),
    );
}
