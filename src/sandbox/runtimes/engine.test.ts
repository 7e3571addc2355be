import { describe, expect, it } from 'vitest';
import { createRuntime, engineSocket } from '../../image/engine-setup.js';
import { LineSink } from './container.js';
import { createOptions } from './engine.js';
import { type ContainerSpec, ContainerSpecError, containerName } from './runtime.js';

function spec(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: 'warren-abc123-family-0a1b2c3d',
    image: 'warren-agent:1',
    installId: 'abc123',
    groupFolder: 'family',
    mounts: [{ hostPath: '/data/groups/family', containerPath: '/workspace/group', isReadOnly: false }],
    env: { TZ: 'UTC', HOME: '/home/agent' },
    limits: { memoryMb: 512, cpus: 1.5, pids: 256 },
    hardRunTimeoutMs: 60_000,
    ...overrides,
  };
}

const docker = 'docker';

describe('create options', () => {
  it('carry every hardening setting', () => {
    const options = createOptions(spec(), docker);
    expect(options.User).toBe('1000:1000');
    expect(options.Labels).toEqual({
      'warren.install': 'abc123',
      'warren.group': 'family',
      'warren.managed': 'true',
    });
    expect(options.HostConfig).toMatchObject({
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Memory: 512 * 1024 * 1024,
      MemorySwap: 512 * 1024 * 1024,
      NanoCpus: 1.5e9,
      PidsLimit: 256,
      Init: true,
      LogConfig: { Type: 'none' },
      Tmpfs: { '/tmp': 'rw,noexec,nosuid,nodev,size=64m,mode=1777' },
    });
    expect(options.HostConfig?.Privileged).toBeUndefined();
    expect(options.HostConfig?.Binds).toBeUndefined();
  });

  it('carry env sorted, workdir, entrypoint and command as given', () => {
    const options = createOptions(
      spec({ command: ['-c', 'x'], workdir: '/workspace/group', entrypoint: '/bin/sh' }),
      docker,
    );
    expect(options).toMatchObject({
      Image: 'warren-agent:1',
      Env: ['HOME=/home/agent', 'TZ=UTC'],
      WorkingDir: '/workspace/group',
      Entrypoint: ['/bin/sh'],
      Cmd: ['-c', 'x'],
    });
    expect(createOptions(spec(), docker)).not.toHaveProperty('Cmd');
  });

  it('bind mounts, read-only where asked', () => {
    const options = createOptions(
      spec({
        mounts: [
          { hostPath: '/data/global', containerPath: '/workspace/global', isReadOnly: true },
          { hostPath: '/data/ipc/family', containerPath: '/workspace/ipc', isReadOnly: false },
        ],
      }),
      docker,
    );
    expect(options.HostConfig?.Mounts).toEqual([
      { Type: 'bind', Source: '/data/global', Target: '/workspace/global', ReadOnly: true },
      { Type: 'bind', Source: '/data/ipc/family', Target: '/workspace/ipc', ReadOnly: false },
    ]);
  });

  it("give the spec's tmpfs folders to the container's user: uid= on Docker and gVisor, U on podman", () => {
    const withHome = spec({ tmpfs: ['/home/agent'] });
    for (const kind of [docker, 'gvisor'] as const) {
      expect(createOptions(withHome, kind).HostConfig?.Tmpfs).toEqual({
        '/tmp': 'rw,noexec,nosuid,nodev,size=64m,mode=1777',
        '/home/agent': 'rw,noexec,nosuid,nodev,size=64m,mode=1777,uid=1000,gid=1000',
      });
    }
    expect(createOptions(withHome, 'podman').HostConfig?.Tmpfs).toEqual({
      '/tmp': 'rw,noexec,nosuid,nodev,size=64m,mode=1777',
      '/home/agent': 'rw,noexec,nosuid,nodev,size=64m,mode=1777,U',
    });
  });

  it('map the host user to the same uid on rootless podman only (a root host runs rootful podman)', () => {
    const isRoot = process.getuid?.() === 0;
    expect(createOptions(spec(), 'podman').HostConfig?.UsernsMode).toBe(isRoot ? undefined : 'keep-id');
    expect(createOptions(spec(), docker).HostConfig?.UsernsMode).toBeUndefined();
  });

  it('reject relative or traversing container paths, and relative host paths', () => {
    for (const containerPath of ['workspace', '/workspace/../etc', '/']) {
      const bad = spec({ mounts: [{ hostPath: '/data/x', containerPath, isReadOnly: true }] });
      expect(() => createOptions(bad, docker)).toThrow(ContainerSpecError);
    }
    const relative = spec({ mounts: [{ hostPath: 'data/x', containerPath: '/x', isReadOnly: true }] });
    expect(() => createOptions(relative, docker)).toThrow(ContainerSpecError);
  });

  it('reject names, images and env keys that could reach another object or variable', () => {
    const bad: Partial<ContainerSpec>[] = [
      { name: '../images/x' },
      { image: '../../containers/x' },
      { image: '-v/:/host' },
      { env: { 'A=B': 'x' } },
      { groupFolder: '../etc' },
      { installId: 'A B' },
      { user: { uid: 0, gid: 0 } },
    ];
    for (const overrides of bad)
      expect(() => createOptions(spec(overrides), docker)).toThrow(ContainerSpecError);
  });

  it('for podman add explicit rlimits, for gVisor select the runsc runtime', () => {
    expect(createOptions(spec(), 'podman').HostConfig?.Ulimits).toEqual([
      { Name: 'nofile', Soft: 4096, Hard: 4096 },
      { Name: 'nproc', Soft: 4096, Hard: 4096 },
    ]);
    expect(createOptions(spec(), 'gvisor').HostConfig?.Runtime).toBe('runsc');
    expect(createOptions(spec(), docker).HostConfig?.Runtime).toBeUndefined();
  });
});

describe('container names', () => {
  it('name the install and the folder and differ on every call', () => {
    const first = containerName('abc123', 'family_chat');
    expect(first).toMatch(/^warren-abc123-family_chat-[0-9a-f]{8}$/);
    expect(containerName('abc123', 'family_chat')).not.toBe(first);
  });

  it('refuse a folder with path tricks', () => {
    expect(() => containerName('abc123', '../x')).toThrow(ContainerSpecError);
  });
});

describe('runtime factory', () => {
  it('builds the runtime the config names', () => {
    expect(createRuntime({ kind: 'docker' }).kind).toBe('docker');
    expect(createRuntime({ kind: 'podman' }).kind).toBe('podman');
    expect(createRuntime({ kind: 'gvisor' }).kind).toBe('gvisor');
  });

  it("finds the engine's socket: DOCKER_HOST first, else the engine's usual one", () => {
    expect(engineSocket('docker', { DOCKER_HOST: 'unix:///run/user/5/docker.sock' })).toBe(
      '/run/user/5/docker.sock',
    );
    expect(engineSocket('docker', {})).toBe('/var/run/docker.sock');
    expect(engineSocket('gvisor', {})).toBe('/var/run/docker.sock');
    const rootless = process.getuid?.() !== 0;
    expect(engineSocket('podman', { XDG_RUNTIME_DIR: '/run/user/5' })).toBe(
      rootless ? '/run/user/5/podman/podman.sock' : '/run/podman/podman.sock',
    );
    expect(engineSocket('podman', {})).toBe('/run/podman/podman.sock');
  });
});

describe('output lines', () => {
  it('are split across chunks, and a very long line is cut at 64 KiB', () => {
    const lines: string[] = [];
    const sink = new LineSink((line) => lines.push(line));
    sink.write(Buffer.from('one\ntw'));
    sink.write(Buffer.from('o\r\nthree'));
    sink.write(Buffer.alloc(70 * 1024, 'x'));
    sink.write(Buffer.from(`${'y'.repeat(70 * 1024)}\n`));
    sink.flush();
    expect(lines.slice(0, 2)).toEqual(['one', 'two']);
    expect(lines.slice(2).every((line) => line.length <= 64 * 1024)).toBe(true);
    expect(lines[2]).toHaveLength(64 * 1024);
    expect(lines.join('').length).toBe('onetwothree'.length + 140 * 1024);
  });

  it('keep only the tail when asked', () => {
    const sink = new LineSink(() => {}, 8);
    sink.write(Buffer.from('0123456789'));
    sink.write(Buffer.from('ab'));
    expect(sink.tail()).toBe('456789ab');
  });
});
