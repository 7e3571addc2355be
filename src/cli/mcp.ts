// `warren mcp add|remove|list`: a group's remote MCP servers (streamable HTTP), which its agent reaches through the
// egress gateway. Parsing and printing only; each is an owner operation (intake/owner-ops.ts, authorized and audited
// there).
import type { Command } from 'commander';
import type { OwnerOp, OwnerOps } from '../intake/owner-ops.js';
import { performFromCli } from './owner.js';
import { type Cli, type CliOutcome, runToOutcome } from './program.js';

/** Runs `warren mcp ARGS` over the given operations; code 0 (text for stdout), 1 refused, 2 usage. */
export function runMcpCommand(args: string[], ops: OwnerOps): Promise<CliOutcome> {
  return runToOutcome(
    (program, cli) => registerMcp(program, cli, { withOwnerOps: async (fn) => fn({ ops }) }),
    ['mcp', ...args],
  );
}

/** Only the owner's operations are needed (a CliHost is one). */
interface McpHost {
  withOwnerOps<T>(fn: (context: { ops: OwnerOps }) => T | Promise<T>): Promise<T>;
}

export function registerMcp(program: Command, cli: Cli, host: McpHost): void {
  const perform = (request: OwnerOp) => host.withOwnerOps(({ ops }) => performFromCli(ops, request));
  const mcp = program
    .command('mcp')
    .description(
      "remote MCP servers a group's agent is given from its next run (reached through the egress gateway: " +
        'allow the host with `warren net allow`, give credentials with `warren secrets bind`)',
    );
  mcp
    .command('add')
    .description('give the agent an MCP server (streamable HTTP), or replace the one of that name')
    .argument('<folder>', 'the group folder')
    .argument('<name>', 'a-z, 0-9, _ and -, starting with a letter (its tools are mcp__NAME__…)')
    .argument('<url>', 'https://… or http://…, with no user name or password in it')
    .action(
      cli.action((folder: string, name: string, url: string) =>
        perform({ op: 'mcp-add', folder, name, url }),
      ),
    );
  mcp
    .command('remove')
    .description('take an MCP server away')
    .argument('<folder>', 'the group folder')
    .argument('<name>', 'the server name')
    .action(cli.action((folder: string, name: string) => perform({ op: 'mcp-remove', folder, name })));
  mcp
    .command('list')
    .description("the group's MCP servers")
    .argument('<folder>', 'the group folder')
    .action(cli.action((folder: string) => perform({ op: 'mcp-list', folder })));
}
