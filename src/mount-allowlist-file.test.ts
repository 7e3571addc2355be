import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadMountAllowlist } from './mount-allowlist-file.js';

let root = '';
let home = '';

beforeEach(() => {
  root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'warren-allowlist-')));
  home = path.join(root, 'home');
});

afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

describe('mount allowlist file', () => {
  it('missing means no allowlist (no extra mounts)', () => {
    expect(loadMountAllowlist(path.join(root, 'absent.json'))).toEqual({ ok: true, allowlist: null });
  });

  it('malformed gives a clear error', () => {
    const file = path.join(root, 'allowlist.json');
    fs.writeFileSync(file, '{ "allowedRoots": [ ');
    const notJson = loadMountAllowlist(file);
    expect(notJson).toEqual({ ok: false, reason: expect.stringMatching(/is not valid JSON/) });

    fs.writeFileSync(file, JSON.stringify({ allowedRoots: [{ path: '/x', allowReadwrite: true }] }));
    const badShape = loadMountAllowlist(file);
    expect(badShape).toEqual({ ok: false, reason: expect.stringMatching(/is malformed.*allowReadwrite/s) });

    fs.writeFileSync(file, JSON.stringify({ allowedRoots: [{ path: 'relative/dir' }] }));
    expect(loadMountAllowlist(file)).toEqual({
      ok: false,
      reason: expect.stringMatching(/not an absolute path/),
    });
  });

  it('expands ~ in roots and remembers where it was read from', () => {
    const file = path.join(root, 'allowlist.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ allowedRoots: [{ path: '~/projects' }], blockedPatterns: ['*.pem'] }),
    );
    expect(loadMountAllowlist(file, { homeDir: home })).toEqual({
      ok: true,
      allowlist: {
        allowedRoots: [{ path: path.join(home, 'projects') }],
        blockedPatterns: ['*.pem'],
        sourcePath: file,
      },
    });
  });
});
