// `warren doctor`: checks what Warren needs on this machine; each failed check comes with a one-line fix.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import type { Config } from '../config.js';
import { agentSource, SOURCE_LABEL } from '../image/agent-image.js';
import type { ImageEngine } from '../image/image-build.js';
import type { ModelCredential } from '../sandbox/credentials.js';
import type { ContainerRuntime } from '../sandbox/runtimes/index.js';
import { canUseVolumes } from '../sandbox/volumes.js';

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

export function formatDoctor(checks: DoctorCheck[]): string {
  return checks
    .map(
      (check) =>
        `${check.isOk ? '✔' : '✘'} ${check.name}: ${check.detail}${check.fix ? `\n    fix: ${check.fix}` : ''}`,
    )
    .join('\n');
}
