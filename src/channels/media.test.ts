import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/harness.js';
import { registerGroup } from '../intake/registration.js';
import { silentLogger } from '../log.js';
import { openStore, type Store } from '../store/store.js';
import {
  createMediaSaver,
  describeMedia,
  type IncomingMedia,
  type MediaSaver,
  MediaTooLargeError,
  openOutgoingFile,
} from './media.js';

let store: Store;
let dataDir: string;
let saver: MediaSaver;
let downloads: number;

beforeEach(() => {
  dataDir = tempDir();
  store = openStore(':memory:');
  for (const folder of ['alpha', 'beta']) {
    registerGroup(
      store,
      dataDir,
      {
        folder,
        name: folder,
        chat: { channel: 'tg', chatId: `chat-${folder}` },
        isDirect: false,
        trigger: 'always',
      },
      0,
    );
  }
  saver = createMediaSaver({
    dataDir,
    store,
    maxBytes: 100,
    now: () => Date.UTC(2026, 10, 25),
    log: silentLogger(),
  });
  downloads = 0;
});
afterEach(() => store.close());

const medium = (overrides: Partial<IncomingMedia> = {}): IncomingMedia => ({
  channel: 'tg',
  chatId: 'chat-alpha',
  externalId: 'm1',
  kind: 'photo',
  mimeType: 'image/jpeg',
  async download() {
    downloads++;
    return Buffer.from('JPEGDATA');
  },
  ...overrides,
});

describe('saving received media', () => {
  it("saves into the folder of the chat's own group, under a generated name, and never another group's", async () => {
    const result = await saver.save(medium({ fileName: '../beta/CLAUDE.md' }));
    expect(result).toEqual({
      status: 'saved',
      relativePath: expect.stringMatching(/^media\/2026-11-25-[0-9a-f]{12}\.jpg$/),
    });
    const files = readdirSync(join(dataDir, 'groups', 'alpha', 'media'));
    expect(files).toHaveLength(1);
    expect(readFileSync(join(dataDir, 'groups', 'alpha', 'media', files[0] as string), 'utf8')).toBe(
      'JPEGDATA',
    );
    expect(existsSync(join(dataDir, 'groups', 'beta', 'media'))).toBe(false);
    expect(readFileSync(join(dataDir, 'groups', 'beta', 'CLAUDE.md'), 'utf8')).not.toBe('JPEGDATA');
  });

  it('saves nothing (and downloads nothing) for a chat that is not registered', async () => {
    expect(await saver.save(medium({ chatId: 'stranger' }))).toEqual({
      status: 'skipped',
      reason: 'the chat is not registered',
    });
    expect(downloads).toBe(0);
  });

  it('refuses a media folder the agent replaced with a symlink, writing nothing through it', async () => {
    const outside = tempDir();
    symlinkSync(outside, join(dataDir, 'groups', 'alpha', 'media'));
    expect(await saver.save(medium())).toMatchObject({ status: 'skipped' });
    expect(readdirSync(outside)).toEqual([]);
    expect(downloads).toBe(0);
  });

  it('neither blocks on nor opens a FIFO the agent planted as the media folder or a file in it', async () => {
    const media = join(dataDir, 'groups', 'alpha', 'media');
    execFileSync('mkfifo', [media]);
    const started = Date.now();
    expect(await saver.save(medium())).toMatchObject({ status: 'skipped', reason: /not a plain folder/ });
    rmSync(media);
    mkdirSync(media);
    const first = await saver.save(medium({ externalId: 'm9' }));
    const name = (first as { relativePath: string }).relativePath.replace('media/', '');
    rmSync(join(media, name));
    execFileSync('mkfifo', [join(media, name)]);
    // The same name again: created with O_EXCL, so the FIFO is never opened (an open for writing would block).
    expect(await saver.save(medium({ externalId: 'm9' }))).toMatchObject({ status: 'saved' });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('the same message delivered twice is saved once', async () => {
    const first = await saver.save(medium());
    const second = await saver.save(medium());
    expect(second).toEqual(first);
    expect(readdirSync(join(dataDir, 'groups', 'alpha', 'media'))).toHaveLength(1);
  });

  it('a medium larger than the cap is skipped, whether the service said its size or not', async () => {
    expect(await saver.save(medium({ sizeBytes: 500 }))).toMatchObject({
      status: 'skipped',
      reason: /too large/,
    });
    expect(downloads).toBe(0);
    const result = await saver.save(
      medium({
        download: async (maxBytes) => {
          throw new MediaTooLargeError(maxBytes);
        },
      }),
    );
    expect(result).toMatchObject({ status: 'skipped', reason: /too large/ });
  });

  it('names the medium for the agent, with the sender-given name made harmless', () => {
    expect(
      describeMedia(
        { kind: 'document', fileName: 'a"\nb.pdf' },
        { status: 'saved', relativePath: 'media/x.pdf' },
      ),
    ).toBe('[document "ab.pdf" saved: media/x.pdf]');
  });
});

describe('files going out', () => {
  it('reads a regular file, refusing symlinks, folders and files over the cap', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.txt'), 'hello');
    symlinkSync(join(dir, 'a.txt'), join(dir, 'link.txt'));
    expect(await openOutgoingFile(join(dir, 'a.txt'), 100)).toMatchObject({
      status: 'ok',
      mimeType: 'text/plain',
    });
    expect(await openOutgoingFile(join(dir, 'link.txt'), 100)).toMatchObject({ status: 'failed' });
    expect(await openOutgoingFile(dir, 100)).toMatchObject({ status: 'failed' });
    expect(await openOutgoingFile(join(dir, 'a.txt'), 2)).toMatchObject({
      status: 'failed',
      reason: /limit/,
    });
  });
});
