// Keeping Warren running: `warren service` (systemd, launchd), `warren backup`, `warren logs`, `warren doctor`,
// `warren image build`.
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../config.js';
import { buildAgentImage } from '../image/agent-image.js';
import { createRuntime } from '../image/engine-setup.js';
import { createImageEngine } from '../image/image-build.js';
import { readModelCredential } from '../sandbox/credentials.js';
import { openStore } from '../store/store.js';
import { formatDoctor, runDoctor } from './doctor.js';
import { showLogs } from './logs.js';
import { type Cli, UsageError } from './program.js';
import { runService, specFor } from './service.js';

export interface UpkeepDeps {
  config(): Config;
  packageRoot: string;
  databasePath(dataDir: string): string;
}

export function registerUpkeep(program: Command, cli: Cli, deps: UpkeepDeps): void {
  program
    .command('image')
    .description('the agent container image')
    .command('build')
    .description('build the agent container image, labelled with the code it holds')
    .action(cli.action(() => buildImage(cli, deps.config(), deps.packageRoot)));
  program
    .command('doctor')
    .description('check this machine and say how to fix what is missing (exit 1 when something needs fixing)')
    .action(cli.action(() => doctor(cli, deps.config(), deps.packageRoot)));

  const service = program
    .command('service')
    .description('run Warren as a service (systemd, launchd), restarted on failure');
  const actions = {
    install: 'install and start the service (it reads .env from this folder)',
    uninstall: 'stop and remove the service',
    status: "the service's state",
  };
  for (const [action, description] of Object.entries(actions) as [keyof typeof actions, string][]) {
    service
      .command(action)
      .description(description)
      .option('--system', 'a system service that starts at boot (as you), not at login')
      .action(
        cli.action((options: { system?: boolean }) => {
          const dataDir = deps.config().dataDir;
          const cliPath = join(deps.packageRoot, 'dist', 'cli.js');
          const spec = specFor({
            dataDir,
            cli: cliPath,
            isSystem: options.system ?? false,
            node: process.execPath,
            workDir: process.cwd(),
          });
          return runService(action, spec);
        }),
      );
  }

  program
    .command('backup')
    .description('a consistent copy of the database, safe while Warren runs')
    .argument('[file]', 'a new file (default: <data dir>/backups/warren-<time>.db)')
    .action(
      cli.action((file: string | undefined) => {
        const dataDir = deps.config().dataDir;
        return backup(cli, { dataDir, database: deps.databasePath(dataDir), file });
      }),
    );
  program
    .command('logs')
    .description("the host's log (<data dir>/logs), newest last")
    .option('-f, --follow', 'keep printing what the host writes')
    .action(
      cli.action((options: { follow?: boolean }) =>
        logs(cli, options.follow ?? false, deps.config().dataDir),
      ),
    );
}

/** A consistent copy of the database; a file that exists is never overwritten. */
async function backup(
  cli: Cli,
  where: { dataDir: string; database: string; file?: string },
): Promise<number> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = resolve(where.file ?? join(where.dataDir, 'backups', `warren-${stamp}.db`));
  if (existsSync(file)) throw new UsageError(`${file} exists; name a new file`);
  const folder = dirname(file);
  if (existsSync(folder) && !statSync(folder).isDirectory()) {
    cli.complain(`${folder} is a file, not a folder; name a file in a folder`);
    return 1;
  }
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const store = openStore(where.database);
  try {
    await store.backup(file);
    chmodSync(file, 0o600); // it holds every message: the owner's alone, like warren.db
  } finally {
    store.close();
  }
  cli.print(`Backed up the database to ${file}`);
  return 0;
}

async function logs(cli: Cli, isFollow: boolean, dataDir: string): Promise<number> {
  const logDir = join(dataDir, 'logs');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const isShown = await showLogs({
    logDir,
    isFollow,
    isPretty: Boolean(process.stdout.isTTY),
    write: (text) => cli.io.writeOut(text),
    signal: controller.signal,
  });
  if (!isShown) cli.complain(`no log yet in ${logDir} (Warren writes it once started)`);
  return isShown ? 0 : 1;
}

/** Exit 1 when something needs fixing. */
async function doctor(cli: Cli, cfg: Config, packageRoot: string): Promise<number> {
  const checks = await runDoctor({
    config: cfg,
    runtime: createRuntime({ kind: cfg.runtime }),
    images: createImageEngine({ kind: cfg.runtime }),
    packageRoot,
    credential: readModelCredential(process.env, process.cwd()),
    nodeVersion: process.version,
  });
  cli.print(formatDoctor(checks));
  return checks.every((check) => check.isOk) ? 0 : 1;
}

async function buildImage(cli: Cli, cfg: Config, packageRoot: string): Promise<number> {
  const images = createImageEngine({ kind: cfg.runtime });
  cli.print(`Building ${cfg.agentImage} from ${cfg.baseImage} …`);
  const result = await buildAgentImage({ images, config: cfg, packageRoot }, (line) =>
    cli.print(`  ${line}`),
  );
  if (!result.ok) {
    cli.complain(`image build failed: ${result.reason}`);
    return 1;
  }
  cli.print(`Built ${cfg.agentImage}.`);
  return 0;
}
