// `warren service install|uninstall|status`: Warren as a service that starts at login (or boot, --system) and
// restarts on failure. A systemd unit on Linux (user unit by default), a launchd agent on macOS. The unit holds no
// secret: Warren reads its .env from the working directory, the folder `install` was run in.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { build } from 'plist';

export interface ServiceSpec {
  platform: NodeJS.Platform;
  isSystem: boolean;
  /** The node binary and the CLI it runs. */
  node: string;
  cli: string;
  dataDir: string;
  /** Where `.env` is read from. */
  workDir: string;
  user: string;
  uid: number;
  home: string;
}

const UNIT = 'warren.service';
const LABEL = 'dev.warren';
/** systemd quoting: a value in double quotes with backslash and quote escaped. */
const quote = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function systemdUnit(spec: ServiceSpec): string {
  return [
    '[Unit]',
    'Description=Warren, a personal AI assistant',
    'After=network-online.target docker.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    ...(spec.isSystem ? [`User=${spec.user}`] : []),
    // A path, taken whole (systemd does not unquote it).
    `WorkingDirectory=${spec.workDir}`,
    `Environment=${quote(`WARREN_DATA_DIR=${spec.dataDir}`)}`,
    `ExecStart=${quote(spec.node)} ${quote(spec.cli)} start`,
    'Restart=on-failure',
    'RestartSec=5',
    // Stopping is not failing: SIGTERM lets Warren hand unanswered messages back (docs/ARCHITECTURE.md).
    'KillSignal=SIGTERM',
    'TimeoutStopSec=60',
    '',
    '[Install]',
    `WantedBy=${spec.isSystem ? 'multi-user.target' : 'default.target'}`,
    '',
  ].join('\n');
}

export function launchdPlist(spec: ServiceSpec): string {
  return build({
    Label: LABEL,
    ProgramArguments: [spec.node, spec.cli, 'start'],
    WorkingDirectory: spec.workDir,
    EnvironmentVariables: { WARREN_DATA_DIR: spec.dataDir },
    RunAtLoad: true,
    // Restarted when it fails, not when it was stopped on purpose.
    KeepAlive: { SuccessfulExit: false },
    StandardErrorPath: join(spec.dataDir, 'logs', 'launchd.err.log'),
  });
}

/** Where the service file goes, what it holds, and the commands that install, remove or show it. */
export function servicePlan(spec: ServiceSpec) {
  // A line break in a path would end the line it is on and start a directive of its own.
  const paths = [spec.node, spec.cli, spec.dataDir, spec.workDir];
  if (paths.some((path) => /[\r\n]/.test(path)))
    throw new Error('a path with a line break cannot go into a service file');
  if (spec.platform === 'darwin') {
    const domain = spec.isSystem ? 'system' : `gui/${spec.uid}`;
    const file = spec.isSystem
      ? `/Library/LaunchDaemons/${LABEL}.plist`
      : join(spec.home, 'Library', 'LaunchAgents', `${LABEL}.plist`);
    return {
      file,
      content: launchdPlist(spec),
      install: [['launchctl', 'bootstrap', domain, file]],
      uninstall: [['launchctl', 'bootout', `${domain}/${LABEL}`]],
      status: [['launchctl', 'print', `${domain}/${LABEL}`]],
    };
  }
  if (spec.platform !== 'linux') throw new Error(`no service manager Warren knows on ${spec.platform}`);
  const scope = spec.isSystem ? [] : ['--user'];
  const file = spec.isSystem
    ? `/etc/systemd/system/${UNIT}`
    : join(spec.home, '.config', 'systemd', 'user', UNIT);
  return {
    file,
    content: systemdUnit(spec),
    install: [
      ['systemctl', ...scope, 'daemon-reload'],
      ['systemctl', ...scope, 'enable', '--now', UNIT],
    ],
    uninstall: [['systemctl', ...scope, 'disable', '--now', UNIT]],
    status: [['systemctl', ...scope, 'status', '--no-pager', UNIT]],
  };
}

export function specFor(options: {
  isSystem: boolean;
  node: string;
  cli: string;
  dataDir: string;
  workDir: string;
}) {
  const user = userInfo();
  return { ...options, platform: process.platform, user: user.username, uid: user.uid, home: homedir() };
}

/** Runs one action; the service manager's own output goes to the terminal. Returns the exit code. */
export function runService(action: 'install' | 'uninstall' | 'status', spec: ServiceSpec): number {
  const plan = servicePlan(spec);
  const run = (commands: string[][]) => {
    for (const [command, ...args] of commands) execFileSync(command as string, args, { stdio: 'inherit' });
  };
  try {
    if (action === 'install') {
      mkdirSync(dirname(plan.file), { recursive: true });
      writeFileSync(plan.file, plan.content, { mode: 0o644 });
      run(plan.install);
      console.log(
        `Installed ${plan.file}; Warren runs now and after every ${spec.isSystem ? 'boot' : 'login'}.`,
      );
      if (spec.platform === 'linux' && !spec.isSystem) {
        console.log(`To keep it running while you are logged out: loginctl enable-linger ${spec.user}`);
      }
    } else if (action === 'uninstall') {
      if (existsSync(plan.file)) run(plan.uninstall);
      rmSync(plan.file, { force: true });
      console.log(`Removed ${plan.file}.`);
    } else run(plan.status);
    return 0;
  } catch (error) {
    console.error(`warren: ${(error as Error).message}`);
    return 1;
  }
}
