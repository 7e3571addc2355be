import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'plist';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { type ServiceSpec, servicePlan } from './service.js';

const spec = (overrides: Partial<ServiceSpec> = {}): ServiceSpec => ({
  platform: 'linux',
  isSystem: false,
  node: process.execPath,
  cli: '/opt/warren app/dist/cli.js',
  dataDir: '/home/ada/my "warren"',
  workDir: '/home/ada/warren',
  user: 'ada',
  uid: 1000,
  home: '/home/ada',
  ...overrides,
});

describe('warren service', () => {
  it('writes a user unit that systemd accepts: this CLI started with this data directory, restarted on failure', () => {
    const plan = servicePlan(spec());
    expect(plan.file).toBe('/home/ada/.config/systemd/user/warren.service');
    expect(plan.content).toContain(`ExecStart="${process.execPath}" "/opt/warren app/dist/cli.js" start`);
    expect(plan.content).toContain('Environment="WARREN_DATA_DIR=/home/ada/my \\"warren\\""');
    expect(plan.content).toContain('Restart=on-failure');
    expect(plan.content).toContain('WantedBy=default.target');
    expect(plan.content).not.toMatch(/API_KEY|TOKEN/);
    expect(plan.install).toEqual([
      ['systemctl', '--user', 'daemon-reload'],
      ['systemctl', '--user', 'enable', '--now', 'warren.service'],
    ]);
    const verify = spawnSync('systemd-analyze', ['--version']);
    // Without systemd's tools (macOS) the text checks above still hold; CI installs them, so it must verify.
    if (verify.error && process.env.CI)
      throw new Error('systemd-analyze is missing (.ci/run installs systemd)');
    if (verify.error) return;
    const dir = tempDir();
    const file = join(dir, 'warren.service');
    writeFileSync(file, plan.content);
    const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('writes a system unit that runs as the installing user', () => {
    const plan = servicePlan(spec({ isSystem: true }));
    expect(plan.file).toBe('/etc/systemd/system/warren.service');
    expect(plan.content).toContain('User=ada');
    expect(plan.content).toContain('WantedBy=multi-user.target');
    expect(plan.install[0]).toEqual(['systemctl', 'daemon-reload']);
  });

  it('writes a launchd agent on macOS that parses back to the same program, data directory and keep-alive', () => {
    const plan = servicePlan(spec({ platform: 'darwin' }));
    expect(plan.file).toBe('/home/ada/Library/LaunchAgents/dev.warren.plist');
    expect(parse(plan.content)).toEqual({
      Label: 'dev.warren',
      ProgramArguments: [process.execPath, '/opt/warren app/dist/cli.js', 'start'],
      WorkingDirectory: '/home/ada/warren',
      EnvironmentVariables: { WARREN_DATA_DIR: '/home/ada/my "warren"' },
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      StandardErrorPath: '/home/ada/my "warren"/logs/launchd.err.log',
    });
    expect(plan.install).toEqual([['launchctl', 'bootstrap', 'gui/1000', plan.file]]);
  });

  it('refuses a path with a line break, which would add a directive of its own', () => {
    expect(() => servicePlan(spec({ dataDir: '/tmp/x\nExecStartPre=/bin/sh -c evil' }))).toThrow(
      /line break/,
    );
  });

  it('says so on a platform without a service manager it knows', () => {
    expect(() => servicePlan(spec({ platform: 'win32' }))).toThrow(
      /no service manager Warren knows on win32/,
    );
  });
});
