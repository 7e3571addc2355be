// `warren net allow|deny|remove|list|websearch|ask`: where a group's agent may connect through the egress gateway,
// whether it may search the web, and whether a host not on its list waits for the owner's answer. Parsing and
// printing only; each is an owner operation (intake/owner-ops.ts, authorized and audited there).
import { Argument, type Command } from 'commander';
import { parseHostPort } from '../intake/net-ops.js';
import type { OwnerOp, OwnerOps } from '../intake/owner-ops.js';
import { performFromCli } from './owner.js';
import { type Cli, type CliOutcome, runToOutcome, UsageError } from './program.js';

/** Runs `warren net ARGS` over the given operations; code 0 (text for stdout), 1 refused, 2 usage. */
export function runNetCommand(args: string[], ops: OwnerOps): Promise<CliOutcome> {
  return runToOutcome(
    (program, cli) => registerNet(program, cli, { withOwnerOps: async (fn) => fn({ ops }) }),
    ['net', ...args],
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
interface NetHost {
  withOwnerOps<T>(fn: (context: { ops: OwnerOps }) => T | Promise<T>): Promise<T>;
}

export function registerNet(program: Command, cli: Cli, host: NetHost): void {
  const perform = (request: OwnerOp) => host.withOwnerOps(({ ops }) => performFromCli(ops, request));
  const net = program
    .command('net')
    .description(
      "where a group's agent may connect (nothing is allowed by default; rules apply at once, web search from the next run)",
    );
  const target = (command: Command) =>
    command
      .argument('<folder>', 'the group folder')
      .argument(
        '<host>',
        'HOST[:PORT] (port 443 when not given): api.example.com, *.example.com, an IP address',
      );
  target(net.command('allow'))
    .description('let the agent connect to a host and port')
    .option('--lan', 'the name may resolve to an address on your network (a self-hosted service)')
    .action(
      cli.action((folder: string, text: string, options: { lan?: boolean }) =>
        perform({ op: 'net-allow', folder, ...hostPort(text), isLan: options.lan ?? false }),
      ),
    );
  target(net.command('deny'))
    .description(
      'never let the agent connect there, whatever allows it (e.g. one name under an allowed *.suffix)',
    )
    .action(
      cli.action((folder: string, text: string) => perform({ op: 'net-deny', folder, ...hostPort(text) })),
    );
  target(net.command('remove'))
    .description('take the rule for that host and port away')
    .action(
      cli.action((folder: string, text: string) => perform({ op: 'net-remove', folder, ...hostPort(text) })),
    );
  net
    .command('list')
    .description("the group's rules, and whether it may search the web")
    .argument('<folder>', 'the group folder')
    .action(cli.action((folder: string) => perform({ op: 'net-list', folder })));
  net
    .command('websearch')
    .description("let the group's agent search the web (off by default; each search costs money)")
    .argument('<folder>', 'the group folder')
    .addArgument(new Argument('<on|off>', 'whether its agent may search the web').choices(['on', 'off']))
    .action(
      cli.action((folder: string, to: string) => perform({ op: 'net-websearch', folder, isOn: to === 'on' })),
    );
  // The answers (/allow, /deny) are the admin chat's: the questions live in the running host.
  net
    .command('ask')
    .description(
      'whether a connection to a host not on the list waits while the admin chat is asked (on by default) or is refused at once',
    )
    .argument('<folder>', 'the group folder')
    .addArgument(new Argument('<on|off>', 'whether to ask').choices(['on', 'off']))
    .action(
      cli.action((folder: string, to: string) => perform({ op: 'net-ask', folder, isOn: to === 'on' })),
    );
}
