// Keeping Warren running: `warren service` (systemd, launchd), `warren backup`, `warren logs`, `warren doctor`,
// `warren image build`.
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { buildAgentImage } from '../image/agent-image.js';
import { createRuntime } from '../image/engine-setup.js';
import { createImageEngine } from '../image/image-build.js';
import { readModelCredential } from '../sandbox/credentials.js';
import { openStore } from '../store/store.js';
import { formatDoctor, runDoctor } from './doctor.js';
import { showLogs } from './logs.js';
import { runService, specFor } from './service.js';

/** A command used wrongly: its message and `warren help`, exit 2. */
export class UsageError extends Error {}

/** `warren service install|uninstall|status [--system]`: the unit runs this CLI's `start` with this data directory. */
export function serviceCommand(args: string[], where: { dataDir: string; cli: string }): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { system: { type: 'boolean', default: false } },
  });
  const action = positionals[0];
  if (action !== 'install' && action !== 'uninstall' && action !== 'status') {
    throw new UsageError('usage: warren service install|uninstall|status [--system]');
  }
  const spec = specFor({ ...where, isSystem: values.system, node: process.execPath, workDir: process.cwd() });
  return runService(action, spec);
}

/** `warren backup [FILE]`: a consistent copy of the database, safe while Warren runs. */
export async function backupCommand(
  args: string[],
  where: { dataDir: string; database: string },
): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = resolve(positionals[0] ?? join(where.dataDir, 'backups', `warren-${stamp}.db`));
  if (existsSync(file)) throw new UsageError(`${file} exists; name a new file`);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const store = openStore(where.database);
  try {
    await store.backup(file);
    chmodSync(file, 0o600); // it holds every message: the owner's alone, like warren.db
  } finally {
    store.close();
  }
  console.log(`Backed up the database to ${file}`);
  return 0;
}

export async function logsCommand(args: string[], dataDir: string): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { follow: { type: 'boolean', short: 'f', default: false } },
  });
  const logDir = join(dataDir, 'logs');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const isShown = await showLogs({
    logDir,
    isFollow: values.follow,
    isPretty: Boolean(process.stdout.isTTY),
    write: (text) => process.stdout.write(text),
    signal: controller.signal,
  });
  if (!isShown) console.error(`warren: no log yet in ${logDir} (Warren writes it once started)`);
  return isShown ? 0 : 1;
}

/** `warren doctor`: exit 1 when something needs fixing. */
export async function doctorCommand(cfg: Config, packageRoot: string): Promise<number> {
  const checks = await runDoctor({
    config: cfg,
    runtime: createRuntime({ kind: cfg.runtime }),
    images: createImageEngine({ kind: cfg.runtime }),
    packageRoot,
    credential: readModelCredential(process.env, process.cwd()),
    nodeVersion: process.version,
  });
  console.log(formatDoctor(checks));
  return checks.every((check) => check.isOk) ? 0 : 1;
}

export async function imageCommand(args: string[], cfg: Config, packageRoot: string): Promise<number> {
  if (args[0] !== 'build') throw new UsageError('usage: warren image build');
  const images = createImageEngine({ kind: cfg.runtime });
  console.log(`Building ${cfg.agentImage} from ${cfg.baseImage} …`);
  const result = await buildAgentImage({ images, config: cfg, packageRoot }, (line) =>
    console.log(`  ${line}`),
  );
  if (!result.ok) {
    console.error(`Image build failed: ${result.reason}`);
    return 1;
  }
  console.log(`Built ${cfg.agentImage}.`);
  return 0;
}
