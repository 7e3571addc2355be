import { describe, expect, it } from 'vitest';
import { buildRunArgs } from './cli-engine.js';
import { dockerFlavor, gvisorFlavor } from './docker.js';
import { createRuntime } from './index.js';
import { podmanFlavor } from './podman.js';
import { engineEnv, LineSplitter, TailBuffer } from './process.js';
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

/** The value following a flag, for each occurrence. */
function valuesOf(args: string[], flag: string): string[] {
  return args.flatMap((arg, index) => (arg === flag ? [args[index + 1] ?? ''] : []));
}

describe('run arguments', () => {
  it('carry every hardening flag', () => {
    const args = buildRunArgs(spec(), dockerFlavor());
    expect(valuesOf(args, '--network')).toEqual(['none']);
    expect(args).toContain('--read-only');
    expect(valuesOf(args, '--cap-drop')).toEqual(['ALL']);
    expect(valuesOf(args, '--security-opt')).toEqual(['no-new-privileges']);
    expect(valuesOf(args, '--user')).toEqual(['1000:1000']);
    expect(valuesOf(args, '--memory')).toEqual(['512m']);
    expect(valuesOf(args, '--memory-swap')).toEqual(['512m']);
    expect(valuesOf(args, '--cpus')).toEqual(['1.5']);
    expect(valuesOf(args, '--pids-limit')).toEqual(['256']);
    expect(valuesOf(args, '--pull')).toEqual(['never']);
    expect(args).toContain('--init');
    expect(valuesOf(args, '--tmpfs')).toEqual(['/tmp:rw,noexec,nosuid,nodev,size=64m,mode=1777']);
    expect(valuesOf(args, '--label')).toEqual([
      'warren.install=abc123',
      'warren.group=family',
      'warren.managed=true',
    ]);
    expect(args).not.toContain('--interactive');
  });

  it('put the image after all flags and the command after the image', () => {
    const args = buildRunArgs(
      spec({ command: ['node', '--flag', 'x'], workdir: '/workspace/group' }),
      dockerFlavor(),
    );
    expect(args.slice(-4)).toEqual(['warren-agent:1', 'node', '--flag', 'x']);
    expect(valuesOf(args, '--workdir')).toEqual(['/workspace/group']);
    expect(valuesOf(args, '--env')).toEqual(['HOME=/home/agent', 'TZ=UTC']);
  });

  it('use --mount with readonly for read-only mounts', () => {
    const args = buildRunArgs(
      spec({
        mounts: [
          { hostPath: '/data/global', containerPath: '/workspace/global', isReadOnly: true },
          { hostPath: '/data/ipc/family', containerPath: '/workspace/ipc', isReadOnly: false },
        ],
      }),
      dockerFlavor(),
    );
    expect(valuesOf(args, '--mount')).toEqual([
      'type=bind,source=/data/global,target=/workspace/global,readonly',
      'type=bind,source=/data/ipc/family,target=/workspace/ipc',
    ]);
  });

  it('add configured tmpfs directories and attach stdin only when there is input', () => {
    const args = buildRunArgs(spec({ tmpfs: ['/home/agent'], tmpfsSizeMb: 32, stdin: '{}' }), dockerFlavor());
    expect(valuesOf(args, '--tmpfs')).toEqual([
      '/tmp:rw,noexec,nosuid,nodev,size=32m,mode=1777',
      '/home/agent:rw,noexec,nosuid,nodev,size=32m,mode=1777,uid=1000,gid=1000',
    ]);
    expect(args).toContain('--interactive');
  });

  it('reject a mount whose host path contains a comma or a colon', () => {
    for (const hostPath of ['/data/a,b', '/data/a:b']) {
      const bad = spec({ mounts: [{ hostPath, containerPath: '/workspace/x', isReadOnly: true }] });
      expect(() => buildRunArgs(bad, dockerFlavor())).toThrow(/breaks engine option parsing/);
    }
  });

  it('reject relative or traversing container paths', () => {
    for (const containerPath of ['workspace', '/workspace/../etc', '/']) {
      const bad = spec({ mounts: [{ hostPath: '/data/x', containerPath, isReadOnly: true }] });
      expect(() => buildRunArgs(bad, dockerFlavor())).toThrow(ContainerSpecError);
    }
  });

  it('reject names, images and env keys that could be read as flags or break parsing', () => {
    expect(() => buildRunArgs(spec({ name: '--privileged' }), dockerFlavor())).toThrow(ContainerSpecError);
    expect(() => buildRunArgs(spec({ image: '-v/:/host' }), dockerFlavor())).toThrow(ContainerSpecError);
    expect(() => buildRunArgs(spec({ env: { 'A=B': 'x' } }), dockerFlavor())).toThrow(ContainerSpecError);
    expect(() => buildRunArgs(spec({ groupFolder: '../etc' }), dockerFlavor())).toThrow(ContainerSpecError);
    expect(() => buildRunArgs(spec({ user: { uid: 0, gid: 0 } }), dockerFlavor())).toThrow(
      ContainerSpecError,
    );
  });

  it('for podman add explicit rlimits', () => {
    const args = buildRunArgs(spec(), podmanFlavor());
    expect(valuesOf(args, '--ulimit')).toEqual(['nofile=4096:4096', 'nproc=4096:4096']);
  });

  it('for gVisor select the runsc runtime', () => {
    expect(valuesOf(buildRunArgs(spec(), gvisorFlavor()), '--runtime')).toEqual(['runsc']);
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
});

describe('engine CLI plumbing', () => {
  it('passes the engine CLI no secrets from the host environment', () => {
    const env = engineEnv({
      PATH: '/bin',
      DOCKER_HOST: 'unix:///x',
      ANTHROPIC_API_KEY: 'sk-secret',
      TELEGRAM_TOKEN: 't',
    });
    expect(env).toEqual({ PATH: '/bin', DOCKER_HOST: 'unix:///x' });
  });

  it('splits output into lines across chunks and cuts very long lines', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line));
    splitter.push(Buffer.from('one\ntw'));
    splitter.push(Buffer.from('o\r\nthree'));
    splitter.push(Buffer.alloc(70 * 1024, 'x'));
    splitter.flush();
    expect(lines.slice(0, 2)).toEqual(['one', 'two']);
    expect(lines[2]).toHaveLength(64 * 1024);
    expect(lines.join('').length).toBe('onetwothree'.length + 70 * 1024);
  });

  it('keeps only the tail of stderr', () => {
    const tail = new TailBuffer(8);
    tail.push(Buffer.from('0123456789'));
    tail.push(Buffer.from('ab'));
    expect(tail.toString()).toBe('456789ab');
  });
});
