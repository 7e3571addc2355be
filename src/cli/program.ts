// The CLI's plumbing on commander: where output goes, how an action reports, and the one map from errors to exit
// codes (0 done; 1 refused or failed; 2 usage error).
import { Command, CommanderError } from 'commander';
import { type Config, ConfigError } from '../config.js';
import type { OwnerOps } from '../intake/owner-ops.js';
import { type Store, StoreError } from '../store/store.js';
import { ChatClientError } from './chat-client.js';

/** A command used wrongly: its message and a hint to the command's --help, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** code: 0 done (text for stdout), 1 refused or failed (text for stderr). */
export interface CliOutcome {
  code: number;
  text: string;
}

/** Raw writes (text carries its own newlines): the terminal for `warren`, a buffer in tests. */
export interface CliIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

export const terminalIo: CliIo = {
  writeOut: (text) => process.stdout.write(text),
  writeErr: (text) => process.stderr.write(text),
};

export interface OwnerContext {
  store: Store;
  /** The owner's operations: the same table as the admin chat's, authorized and audited there. */
  ops: OwnerOps;
  now: number;
}

/**
 * What a command may open, and only once its action runs: parsing and `--help` touch no store and need no valid
 * configuration.
 */
export interface CliHost {
  config(): Config;
  /** Opens the store for one action and closes it after. */
  withStore<T>(fn: (store: Store, config: Config) => T | Promise<T>): Promise<T>;
  withOwnerOps<T>(fn: (context: OwnerContext) => T | Promise<T>): Promise<T>;
  now(): number;
}

/** What an action returns: its exit code (it printed what it had to), or an outcome for the CLI to print. */
export type ActionResult = number | CliOutcome;

/** One run of the CLI: its output and the exit code of the action that ran. */
export class Cli {
  exitCode = 0;

  constructor(readonly io: CliIo) {}

  /** Prints lines to stdout. */
  print(text: string): void {
    this.io.writeOut(`${text}\n`);
  }

  /** Prints a one-line complaint to stderr, the way every command does. */
  complain(text: string): void {
    this.io.writeErr(`warren: ${text}\n`);
  }

  /** Wraps a commander action: runs it, prints its outcome, and keeps its exit code for runProgram. */
  action<A extends unknown[]>(
    fn: (...args: A) => ActionResult | Promise<ActionResult>,
  ): (...args: A) => Promise<void> {
    return async (...args: A) => {
      const result = await fn(...args);
      if (typeof result === 'number') {
        this.exitCode = result;
        return;
      }
      if (result.code === 0) this.print(result.text);
      else this.complain(result.text);
      this.exitCode = result.code;
    };
  }
}

/** `warren groups add`, for hints. */
function commandLine(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/**
 * Parses argv and runs the command it names; returns the exit code and never exits the process. Expected failures
 * print one line; a stack only when isDebug.
 */
export async function runProgram(
  program: Command,
  cli: Cli,
  argv: string[],
  options: { isDebug?: boolean } = {},
): Promise<number> {
  let failing: Command = program;
  // Every command (settings are copied at creation, so set them on each): output through cli.io, and commander's
  // own errors become UsageErrors naming the command used wrongly, never a process.exit.
  const configure = (command: Command) => {
    command
      .configureOutput({ writeOut: cli.io.writeOut, writeErr: cli.io.writeErr, outputError: () => {} })
      .helpCommand(false) // `warren help X Y` and `--help` are the ways; no `help` among each one's subcommands
      .exitOverride((error) => {
        // --help, --version (0); a command that needs a subcommand was given none (its usage went to stderr).
        if (error.exitCode === 0 || error.code === 'commander.help') throw error;
        failing = command;
        // `warren tasks frob` runs the default `list` with an extra word: say what the person meant.
        if (error.code === 'commander.excessArguments' && command.parent && !argv.includes(command.name())) {
          failing = command.parent;
          throw new UsageError(`unknown command '${command.parent.name()} ${command.args[0]}'`);
        }
        throw new UsageError(error.message.replace(/^error: /, ''));
      });
    for (const sub of command.commands) configure(sub);
  };
  configure(program);
  // A UsageError an action throws names the command that ran (the hook runs for every descendant's action).
  program.hook('preAction', (_, actionCommand) => {
    failing = actionCommand;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return cli.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof UsageError) {
      cli.complain(`${error.message}\nRun \`${commandLine(failing)} --help\` for usage.`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof StoreError || error instanceof ChatClientError) {
      cli.complain(error.message);
      return 1;
    }
    // Not expected (a file system refusal, a bug): the message, and the stack only when asked for.
    cli.complain(error instanceof Error ? error.message : String(error));
    if (options.isDebug && error instanceof Error && error.stack) cli.io.writeErr(`${error.stack}\n`);
    return 1;
  }
}

/**
 * Runs argv on a program holding what register adds, and returns what it printed with its exit code: for code
 * (and tests) that call a command over a store of their own.
 */
export async function runToOutcome(
  register: (program: Command, cli: Cli) => void,
  argv: string[],
): Promise<CliOutcome> {
  const output = { out: '', err: '' };
  const cli = new Cli({ writeOut: (text) => (output.out += text), writeErr: (text) => (output.err += text) });
  const program = new Command('warren');
  register(program, cli);
  const code = await runProgram(program, cli, argv);
  return { code, text: (code === 0 ? output.out : output.err.replace(/^warren: /, '')).trimEnd() };
}
