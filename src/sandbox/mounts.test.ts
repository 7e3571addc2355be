import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMountAllowlist, type MountAllowlist } from '../mount-allowlist-file.js';
import { checkGroupFolder } from '../store/store.js';
import { buildMounts, type ExtraMountRequest } from './mounts.js';

let root = '';
let dataDir = '';
let home = '';

beforeEach(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'warren-mounts-')));
  dataDir = path.join(root, 'data');
  home = path.join(root, 'home');
  fs.mkdirSync(dataDir);
  for (const dir of ['projects/app/src', 'projects/secret-stuff', '.ssh', 'notes', 'shared']) {
    fs.mkdirSync(path.join(home, dir), { recursive: true });
  }
  fs.writeFileSync(path.join(home, '.ssh', 'id_ed25519'), 'key');
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function allowlist(overrides: Partial<MountAllowlist> = {}): MountAllowlist {
  return { allowedRoots: [{ path: path.join(home, 'projects'), allowReadWrite: true }], ...overrides };
}

function extras(requests: ExtraMountRequest[], list: MountAllowlist | null = allowlist(), isAdmin = false) {
  const { mounts, denials } = buildMounts({
    dataDir,
    groupFolder: 'family',
    isAdmin,
    extraMounts: requests,
    allowlist: list,
  });
  return { extra: mounts.filter((mount) => mount.containerPath.startsWith('/workspace/extra/')), denials };
}

describe('group layout', () => {
  it('mounts the group folder, global memory, session, ipc and socket folders from the data directory', () => {
    const { mounts, denials } = buildMounts({
      dataDir,
      groupFolder: 'family',
      isAdmin: false,
      extraMounts: [],
      allowlist: null,
    });
    expect(denials).toEqual([]);
    expect(mounts).toEqual([
      { hostPath: path.join(dataDir, 'groups/family'), containerPath: '/workspace/group', isReadOnly: false },
      { hostPath: path.join(dataDir, 'global'), containerPath: '/workspace/global', isReadOnly: true },
      {
        hostPath: path.join(dataDir, 'sessions/family'),
        containerPath: '/home/agent/.claude/projects',
        isReadOnly: false,
      },
      { hostPath: path.join(dataDir, 'sockets/family'), containerPath: '/run/warren', isReadOnly: true },
    ]);
    expect(fs.statSync(path.join(dataDir, 'groups/family')).isDirectory()).toBe(true);
  });

  it('gives no group write access to global memory, the admin group included', () => {
    const { mounts } = buildMounts({
      dataDir,
      groupFolder: 'main',
      isAdmin: true,
      extraMounts: [],
      allowlist: null,
    });
    expect(mounts.find((mount) => mount.containerPath === '/workspace/global')?.isReadOnly).toBe(true);
  });

  it('throws for a folder that tries to leave the data directory', () => {
    for (const folder of ['../x', 'a/b', '.hidden', '', 'UPPER']) {
      expect(checkGroupFolder(folder)).not.toBeNull();
      expect(() =>
        buildMounts({ dataDir, groupFolder: folder, isAdmin: false, extraMounts: [], allowlist: null }),
      ).toThrow(/invalid group folder/);
    }
  });

  it('throws when a layout folder is a symlink out of the data directory', () => {
    fs.mkdirSync(path.join(dataDir, 'groups'));
    fs.symlinkSync(path.join(home, 'notes'), path.join(dataDir, 'groups', 'family'));
    expect(() =>
      buildMounts({ dataDir, groupFolder: 'family', isAdmin: false, extraMounts: [], allowlist: null }),
    ).toThrow(/outside the data directory/);
  });
});

describe('extra mounts', () => {
  it('mounts a folder under an allowed root read-only by default', () => {
    const { extra, denials } = extras([{ hostPath: path.join(home, 'projects/app') }]);
    expect(denials).toEqual([]);
    expect(extra).toEqual([
      { hostPath: path.join(home, 'projects/app'), containerPath: '/workspace/extra/app', isReadOnly: true },
    ]);
  });

  it('are all denied when there is no allowlist', () => {
    const { extra, denials } = extras([{ hostPath: path.join(home, 'projects/app') }], null);
    expect(extra).toEqual([]);
    expect(denials).toEqual([
      { path: path.join(home, 'projects/app'), reason: expect.stringMatching(/no mount allowlist/) },
    ]);
  });

  it('denies a path outside every allowed root', () => {
    const { extra, denials } = extras([{ hostPath: path.join(home, 'notes') }]);
    expect(extra).toEqual([]);
    expect(denials[0]?.reason).toMatch(/not under any allowed root/);
  });

  it('denies a path that does not exist', () => {
    const { denials } = extras([{ hostPath: path.join(home, 'projects/nope') }]);
    expect(denials[0]?.reason).toMatch(/does not exist/);
  });

  it('denies a relative path', () => {
    const { denials } = extras([{ hostPath: 'projects/app' }]);
    expect(denials[0]?.reason).toMatch(/absolute/);
  });

  it('denies a symlink that points into .ssh', () => {
    fs.symlinkSync(path.join(home, '.ssh'), path.join(home, 'projects', 'innocent'));
    const { extra, denials } = extras([{ hostPath: path.join(home, 'projects/innocent') }]);
    expect(extra).toEqual([]);
    expect(denials[0]?.reason).toMatch(/blocked pattern '\.ssh'/);
  });

  it('denies a symlink that points out of the allowed roots', () => {
    fs.symlinkSync(path.join(home, 'notes'), path.join(home, 'projects', 'link-out'));
    const { denials } = extras([{ hostPath: path.join(home, 'projects/link-out') }]);
    expect(denials[0]?.reason).toMatch(/not under any allowed root/);
  });

  it('lets blocked patterns win over an allowing root', () => {
    const list = allowlist({ allowedRoots: [{ path: home, allowReadWrite: true }] });
    fs.mkdirSync(path.join(home, 'projects/app/.aws'));
    const { extra, denials } = extras(
      [{ hostPath: path.join(home, '.ssh') }, { hostPath: path.join(home, 'projects/app/.aws') }],
      list,
    );
    expect(extra).toEqual([]);
    expect(denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/'\.ssh'/),
      expect.stringMatching(/'\.aws'/),
    ]);
  });

  it('applies the allowlist own blocked patterns as well as the defaults', () => {
    const { denials } = extras(
      [{ hostPath: path.join(home, 'projects/secret-stuff') }],
      allowlist({ blockedPatterns: ['secret-*'] }),
    );
    expect(denials[0]?.reason).toMatch(/'secret-\*'/);
  });

  it('denies a folder that directly holds a blocked name', () => {
    const list = allowlist({ allowedRoots: [{ path: home }] });
    fs.writeFileSync(path.join(home, 'projects/app/.env'), 'TOKEN=x');
    const { denials } = extras([{ hostPath: home }, { hostPath: path.join(home, 'projects/app') }], list);
    expect(denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/directly contains \.ssh/),
      expect.stringMatching(/directly contains \.env/),
    ]);
  });

  it('denies the data directory, anything inside it and anything containing it', () => {
    fs.mkdirSync(path.join(dataDir, 'groups/other'), { recursive: true });
    const list = allowlist({ allowedRoots: [{ path: root }] });
    const { extra, denials } = extras(
      [{ hostPath: dataDir }, { hostPath: path.join(dataDir, 'groups/other') }, { hostPath: root }],
      list,
    );
    expect(extra).toEqual([]);
    expect(denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/inside the Warren data directory/),
      expect.stringMatching(/inside the Warren data directory/),
      expect.stringMatching(/contains the Warren data directory/),
    ]);
  });

  it('denies the folder that holds the allowlist itself', () => {
    const configDir = path.join(home, 'projects/config');
    fs.mkdirSync(configDir);
    const file = path.join(configDir, 'mount-allowlist.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ allowedRoots: [{ path: path.join(home, 'projects'), allowReadWrite: true }] }),
    );
    const loaded = loadMountAllowlist(file);
    if (!loaded.ok || !loaded.allowlist) throw new Error('allowlist did not load');
    const { denials } = extras([{ hostPath: configDir, isReadOnly: false }], loaded.allowlist);
    expect(denials[0]?.reason).toMatch(/mount allowlist folder/);
  });

  it('mounts read-write only when the root allows it and the request asks for it', () => {
    const list = allowlist({
      allowedRoots: [
        { path: path.join(home, 'projects'), allowReadWrite: true },
        { path: path.join(home, 'shared') },
      ],
    });
    const { extra, denials } = extras(
      [
        { hostPath: path.join(home, 'projects/app'), isReadOnly: false },
        { hostPath: path.join(home, 'projects/app/src'), containerName: 'src' },
        { hostPath: path.join(home, 'shared'), isReadOnly: false },
      ],
      list,
    );
    expect(extra.map((mount) => [mount.containerPath, mount.isReadOnly])).toEqual([
      ['/workspace/extra/app', false],
      ['/workspace/extra/src', true],
      ['/workspace/extra/shared', true],
    ]);
    expect(denials).toEqual([
      { path: path.join(home, 'shared'), reason: expect.stringMatching(/read-write denied/) },
    ]);
  });

  it('with nonAdminReadOnly gives read-write to the admin group only', () => {
    const list = allowlist({ nonAdminReadOnly: true });
    const request = [{ hostPath: path.join(home, 'projects/app'), isReadOnly: false }];
    expect(extras(request, list, false).extra[0]?.isReadOnly).toBe(true);
    expect(extras(request, list, true).extra[0]?.isReadOnly).toBe(false);
  });

  it('denies container names that are not one safe folder name, and duplicates', () => {
    const app = path.join(home, 'projects/app');
    const { extra, denials } = extras([
      { hostPath: app, containerName: '../escape' },
      { hostPath: app, containerName: 'a/b' },
      { hostPath: app, containerName: 'code' },
      { hostPath: path.join(home, 'projects/app/src'), containerName: 'code' },
    ]);
    expect(extra.map((mount) => mount.containerPath)).toEqual(['/workspace/extra/code']);
    expect(denials.map((denial) => denial.reason)).toEqual([
      expect.stringMatching(/not a safe single folder name/),
      expect.stringMatching(/not a safe single folder name/),
      expect.stringMatching(/already used/),
    ]);
  });

  it('denies a host path the container engine could not parse', () => {
    fs.mkdirSync(path.join(home, 'projects/a,b'));
    const { denials } = extras([{ hostPath: path.join(home, 'projects/a,b'), containerName: 'ab' }]);
    expect(denials[0]?.reason).toMatch(/character the container engine cannot take/);
  });
});
