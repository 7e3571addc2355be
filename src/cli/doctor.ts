// `warren doctor`: checks what Warren needs on this machine; each failed check comes with a one-line fix.
import { accessSync, constants, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type Config, dotEnvFingerprint, STARTED_WITH } from '../config.js';
import { agentSource, SOURCE_LABEL } from '../image/agent-image.js';
import type { ImageEngine } from '../image/image-build.js';
import type { ModelCredential } from '../sandbox/credentials.js';
import type { ContainerRuntime } from '../sandbox/runtimes/index.js';
import { canUseVolumes } from '../sandbox/volumes.js';
import { checkDiscord } from './discord-check.js';
import { checkModelEndpoint } from './model-check.js';
import { checkSlack } from './slack-check.js';

export interface DoctorCheck {
  name: string;
  isOk: boolean;
  detail: string;
  fix?: string;
}

export interface DoctorDeps {
  config: Config;
  runtime: ContainerRuntime;
  /** Which code the agent image holds (its label) against this package's: a stale image is rebuilt at start. */
  images: Pick<ImageEngine, 'labelOf'>;
  packageRoot: string;
  credential: ModelCredential | null;
  nodeVersion: string;
}

export async function runDoctor(deps: DoctorDeps): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const major = Number(deps.nodeVersion.replace(/^v/, '').split('.')[0]);
  checks.push(
    major >= 20
      ? { name: 'Node.js', isOk: true, detail: deps.nodeVersion }
      : {
          name: 'Node.js',
          isOk: false,
          detail: `${deps.nodeVersion} is too old`,
          fix: 'install Node.js 20 or newer',
        },
  );
  // The host works in agents' folders through /proc/self/fd (safe-fs.ts): without it, it refuses rather than trust paths.
  checks.push(
    existsSync('/proc/self/fd')
      ? { name: 'Operating system', isOk: true, detail: `${process.platform} with /proc` }
      : {
          name: 'Operating system',
          isOk: false,
          detail: `${process.platform} has no /proc/self/fd, which the host needs to work safely in agents' folders`,
          fix: 'run Warren on Linux (a Linux VM works)',
        },
  );
  const mode = deps.config.diskQuotaMode;
  checks.push({
    name: 'Disk quota',
    isOk: true,
    detail:
      mode === 'volume' || (mode === 'auto' && canUseVolumes())
        ? `${deps.config.diskQuotaMb} MiB per group, a file system each (a hard limit)`
        : `${deps.config.diskQuotaMb} MiB per group, watched (a hard limit needs Linux, root, loop devices and e2fsprogs)`,
  });
  const engine = await deps.runtime.checkAvailable();
  checks.push(
    engine.ok
      ? { name: 'Container engine', isOk: true, detail: `${deps.runtime.kind} ${engine.version}` }
      : { name: 'Container engine', isOk: false, detail: engine.reason, fix: engine.fix },
  );
  if (engine.ok) {
    const hasImage = await deps.runtime.hasImage(deps.config.agentImage);
    const isCurrent =
      (await deps.images.labelOf(deps.config.agentImage, SOURCE_LABEL)) === agentSource(deps.packageRoot);
    checks.push(
      hasImage
        ? {
            name: 'Agent image',
            isOk: true,
            detail: isCurrent
              ? deps.config.agentImage
              : `${deps.config.agentImage} holds other code than this Warren's; the next start rebuilds it (or run \`warren image build\`)`,
          }
        : {
            name: 'Agent image',
            isOk: false,
            detail: `${deps.config.agentImage} is not built`,
            fix: 'run `warren image build` (warren start also builds it when missing)',
          },
    );
  } else {
    checks.push({
      name: 'Agent image',
      isOk: false,
      detail: 'not checked: no container engine',
      fix: engine.fix,
    });
  }
  checks.push(
    deps.credential
      ? {
          name: 'Model credentials',
          isOk: true,
          detail:
            deps.credential.kind === 'api-key'
              ? 'ANTHROPIC_API_KEY is set'
              : 'CLAUDE_CODE_OAUTH_TOKEN is set',
        }
      : {
          name: 'Model credentials',
          isOk: false,
          detail: 'neither ANTHROPIC_API_KEY nor CLAUDE_CODE_OAUTH_TOKEN is set',
          fix: 'put ANTHROPIC_API_KEY=... in .env in the directory you start Warren from',
        },
  );
  checks.push({ name: 'Model API', ...(await checkModelEndpoint(deps.config, deps.credential)) });
  const slack = await checkSlack(deps.config);
  if (slack) checks.push({ name: 'Slack', ...slack });
  const discord = await checkDiscord(deps.config);
  if (discord) checks.push({ name: 'Discord', ...discord });
  const settings = settingsCheck(deps.config.dataDir);
  if (settings) checks.push(settings);
  try {
    mkdirSync(deps.config.dataDir, { recursive: true, mode: 0o700 });
    accessSync(deps.config.dataDir, constants.W_OK);
    checks.push({ name: 'Data directory', isOk: true, detail: deps.config.dataDir });
  } catch (error) {
    checks.push({
      name: 'Data directory',
      isOk: false,
      detail: `${deps.config.dataDir}: ${(error as Error).message}`,
      fix: 'set WARREN_DATA_DIR to a directory you can write',
    });
  }
  return checks;
}

const startedWithSchema = z.object({
  pid: z.number().int().positive(),
  cwd: z.string(),
  salt: z.string(),
  keys: z.record(z.string(), z.string()),
});

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Whether the running Warren read .env as it is now: a key added, changed or removed since needs a restart. */
export function settingsCheck(dataDir: string): DoctorCheck | null {
  let started: z.infer<typeof startedWithSchema>;
  try {
    started = startedWithSchema.parse(JSON.parse(readFileSync(join(dataDir, STARTED_WITH), 'utf8')));
  } catch {
    return null; // never started here
  }
  if (!isAlive(started.pid)) return null;
  const now = dotEnvFingerprint(started.cwd, started.salt);
  const changes = [...new Set([...Object.keys(started.keys), ...Object.keys(now)])]
    .filter((key) => now[key] !== started.keys[key])
    .map((key) => `${key} ${!(key in started.keys) ? 'added' : key in now ? 'changed' : 'removed'}`);
  const file = join(started.cwd, '.env');
  if (changes.length === 0) {
    return {
      name: 'Settings',
      isOk: true,
      detail: `the running Warren (process ${started.pid}) uses ${file} as it is`,
    };
  }
  return {
    name: 'Settings',
    isOk: false,
    detail: `${file} changed since the running Warren (process ${started.pid}) read it: ${changes.join(', ')}`,
    fix: 'restart Warren to use it: `systemctl --user restart warren` for the service, or stop it and run `warren start`',
  };
}

export function formatDoctor(checks: DoctorCheck[]): string {
  return checks
    .map(
      (check) =>
        `${check.isOk ? '✔' : '✘'} ${check.name}: ${check.detail}${check.fix ? `\n    fix: ${check.fix}` : ''}`,
    )
    .join('\n');
}
