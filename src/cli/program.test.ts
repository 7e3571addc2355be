import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config.js';
import { StoreError } from '../store/store.js';
import { Cli, runProgram, UsageError } from './program.js';

/** A program with one command `thing do` whose action does what the test says, and what it printed. */
async function run(action: () => unknown, argv = ['thing', 'do'], isDebug = false) {
  const output = { out: '', err: '' };
  const cli = new Cli({ writeOut: (text) => (output.out += text), writeErr: (text) => (output.err += text) });
  const program = new Command('warren');
  program
    .command('thing')
    .command('do')
    .option('--fast')
    .action(cli.action(async () => (await action()) as number));
  const code = await runProgram(program, cli, argv, { isDebug });
  return { code, ...output };
}

describe('the exit code map', () => {
  it('an outcome prints to stdout on 0 and as one warren: line on stderr otherwise, with its code', async () => {
    expect(await run(() => ({ code: 0, text: 'done' }))).toEqual({ code: 0, out: 'done\n', err: '' });
    expect(await run(() => ({ code: 1, text: 'no such group' }))).toEqual({
      code: 1,
      out: '',
      err: 'warren: no such group\n',
    });
  });

  it('a usage error is exit 2 with its message and the --help of the command that was misused', async () => {
    const thrown = await run(() => {
      throw new UsageError('the size must be a number');
    });
    expect(thrown).toMatchObject({
      code: 2,
      err: 'warren: the size must be a number\nRun `warren thing do --help` for usage.\n',
    });
    const unknown = await run(() => 0, ['thing', 'do', '--slow']);
    expect(unknown).toMatchObject({
      code: 2,
      err: "warren: unknown option '--slow'\nRun `warren thing do --help` for usage.\n",
    });
  });

  it('--help prints the usage and is a success, without running the action', async () => {
    let isRun = false;
    const help = await run(() => {
      isRun = true;
      return 0;
    }, ['thing', 'do', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: warren thing do \[options\]/);
    expect(isRun).toBe(false);
  });

  it('a configuration or store error is exit 1 with its message only', async () => {
    for (const error of [
      new ConfigError('WARREN_MAX_AGENTS: expected a number', 'maxAgents'),
      new StoreError('the database is newer'),
    ]) {
      const failed = await run(() => {
        throw error;
      });
      expect(failed).toEqual({ code: 1, out: '', err: `warren: ${error.message}\n` });
    }
  });

  it('an unexpected error is exit 1 with its message; the stack only in debug', async () => {
    const boom = () => {
      throw new Error('boom');
    };
    expect(await run(boom)).toEqual({ code: 1, out: '', err: 'warren: boom\n' });
    const debug = await run(boom, ['thing', 'do'], true);
    expect(debug.code).toBe(1);
    expect(debug.err).toMatch(/^warren: boom\nError: boom\n\s+at /);
  });
});
