// `warren pairing list|approve|deny`: the owner's answer to pairing requests, from the terminal.
import { type Command, Option } from 'commander';
import type { OwnerOps } from '../intake/owner-ops.js';
import { performFromCli } from './owner.js';
import { type Cli, type CliOutcome, runToOutcome } from './program.js';

/** Pairing needs only the owner's operations (a CliHost is one). */
interface PairingHost {
  withOwnerOps<T>(fn: (context: { ops: OwnerOps }) => T | Promise<T>): Promise<T>;
}

/** Runs `warren pairing ARGS` over the given operations; code 0 (text for stdout), 1 refused, 2 usage. */
export function runPairingCommand(args: string[], ops: OwnerOps): Promise<CliOutcome> {
  return runToOutcome(
    (program, cli) => registerPairing(program, cli, { withOwnerOps: async (fn) => fn({ ops }) }),
    ['pairing', ...args],
  );
}

export function registerPairing(program: Command, cli: Cli, host: PairingHost): void {
  const perform = (request: Parameters<OwnerOps['perform']>[0]) =>
    host.withOwnerOps(({ ops }) => performFromCli(ops, request));
  const pairing = program
    .command('pairing')
    .description('people who wrote directly and wait for your approval');
  pairing
    .command('list', { isDefault: true })
    .description('the people waiting, with their codes')
    .action(cli.action(() => perform({ op: 'pairing-list' })));
  pairing
    .command('approve')
    .description('let that person talk to an agent (a new group, or an existing one)')
    .argument('<code>', 'the pairing code')
    .option('--folder <name>', 'a new group with this folder')
    .addOption(new Option('--share <folder>', 'an existing group').conflicts('folder'))
    .action(
      cli.action((code: string, options: { folder?: string; share?: string }) =>
        perform({ op: 'pairing-approve', code, folder: options.folder, share: options.share }),
      ),
    );
  pairing
    .command('deny')
    .description('turn that person away (they stay ignored)')
    .argument('<code>', 'the pairing code')
    .action(cli.action((code: string) => perform({ op: 'pairing-deny', code })));
}
