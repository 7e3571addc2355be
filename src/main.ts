// `warren start`: builds the real parts (logger, channels, container runner), starts the host, handles signals.
import { createHash } from 'node:crypto';
import { prepareDataDir, startWarren } from './app.js';
import { createChannels } from './channels/index.js';
import { loadOrCreateToken } from './channels/local.js';
import type { Config } from './config.js';
import { createContainerRunner, ensureAgentImage } from './container-runner.js';
import { readModelCredential } from './credentials.js';
import { createLogger } from './log.js';
import { createRuntime } from './runtimes/index.js';

export interface StartOptions {
  config: Config;
  packageRoot: string;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** Names this install's containers: derived from the data directory, so two installs never touch each other's. */
export function installIdFor(dataDir: string): string {
  return createHash('sha256').update(dataDir).digest('hex').slice(0, 10);
}

/** Runs Warren until SIGINT/SIGTERM. Resolves with the process exit code. */
export async function startHost(options: StartOptions): Promise<number> {
  const { config } = options;
  const log = createLogger({ level: config.logLevel, isPretty: Boolean(process.stderr.isTTY) });
  prepareDataDir(config.dataDir);
  const localToken = loadOrCreateToken(config.dataDir);
  const credential = readModelCredential(options.env, options.cwd);
  if (!credential) {
    log.warn(
      'no ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN: agents will fail until one is set (see `warren doctor`)',
    );
  }
  const runtime = createRuntime({ kind: config.runtime }, { log });
  const installId = installIdFor(config.dataDir);
  let closeRunner: () => Promise<void> = async () => {};
  // The first start builds the agent image (minutes, once); later starts find it and go on at once.
  const image = await ensureAgentImage({ runtime, config, packageRoot: options.packageRoot, log });
  if (!image.ok)
    log.error(
      { reason: image.reason },
      'agent image unavailable: agents will fail until `warren image build` works',
    );

  const warren = await startWarren({
    config,
    log,
    createChannels: (context) => createChannels({ ...context, config, log, localToken }),
    createRunner: (context) => {
      const runner = createContainerRunner({
        ...context,
        config,
        log,
        runtime,
        installId,
        credential,
        packageRoot: options.packageRoot,
      });
      closeRunner = () => runner.close();
      return runner;
    },
  });

  const local = warren.channels.get('local') as { url?: string } | undefined;
  if (local?.url) {
    const url = `${local.url}/#token=${localToken}`;
    process.stdout.write(
      `\n  Warren is running. Chat with ${config.assistantName}:\n\n    ${url}\n\n  or in this terminal: warren chat (npm run warren -- chat)\n  Stop with Ctrl-C.\n\n`,
    );
  } else {
    process.stdout.write('\n  Warren is running (local chat disabled). Stop with Ctrl-C.\n\n');
  }

  return new Promise<number>((resolve) => {
    let isStopping = false;
    const stop = (signal: string) => {
      if (isStopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      isStopping = true;
      log.info({ signal }, 'stopping');
      warren
        .stop()
        .then(() => closeRunner())
        .then(
          () => resolve(0),
          (error: unknown) => {
            log.error({ err: error }, 'error while stopping');
            resolve(1);
          },
        );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));
  });
}
