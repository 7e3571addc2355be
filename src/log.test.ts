import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually } from '../test/fake-agent-runner.js';
import { tempDir } from '../test/harness.js';
import { showLogs } from './cli/logs.js';
import { createLogger, currentLogFile } from './log.js';

const flushed = (log: Awaited<ReturnType<typeof createLogger>>) =>
  new Promise<void>((resolve) => log.flush(() => resolve()));

describe('the log file', () => {
  it('gets every line as JSON, rolled by size, with at most five old files kept', async () => {
    const logDir = join(tempDir(), 'logs');
    const log = await createLogger({ level: 'info', logDir, maxFileSize: '1k' });
    for (let i = 0; i < 200; i++) log.info({ i, pad: 'x'.repeat(40) }, 'line');
    log.debug('below the level');
    await flushed(log);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const files = readdirSync(logDir).filter((name) => /^warren\.\d+\.log$/.test(name));
    expect(files.length).toBeGreaterThan(1);
    expect(files.length).toBeLessThanOrEqual(6);
    const numbered = (name: string) => Number(name.split('.')[1]);
    const text = files
      .sort((a, b) => numbered(a) - numbered(b))
      .map((name) => readFileSync(join(logDir, name), 'utf8'))
      .join('');
    const lines = text.trim().split('\n');
    expect(JSON.parse(lines.at(-1) as string)).toMatchObject({ i: 199, msg: 'line' });
    expect(text).not.toContain('below the level');
    expect(readFileSync(currentLogFile(logDir), 'utf8')).toBe(
      readFileSync(join(logDir, files.sort((a, b) => numbered(a) - numbered(b)).at(-1) as string), 'utf8'),
    );
  });

  it('`warren logs --follow` prints what is there, then what the host writes next', async () => {
    const logDir = join(tempDir(), 'logs');
    const log = await createLogger({ level: 'info', logDir });
    log.info('before');
    await flushed(log);
    // flush() hands the line to the transport's worker thread, which writes the file (and its link) a moment later.
    const written = () =>
      readFileSync(currentLogFile(logDir), { encoding: 'utf8', flag: 'r' }).includes('before');
    await eventually(() => existsSync(currentLogFile(logDir)) && written(), 10_000, 'the line in the file');
    let out = '';
    const controller = new AbortController();
    const following = showLogs({
      logDir,
      isFollow: true,
      isPretty: false,
      write: (text) => {
        out += text;
      },
      signal: controller.signal,
    });
    await eventually(() => out.includes('"before"'), 10_000, 'the existing line');
    log.info('after');
    await flushed(log);
    await eventually(() => out.includes('"after"'), 10_000, 'the new line');
    controller.abort();
    expect(await following).toBe(true);
    expect(out.trim().split('\n')).toHaveLength(2);
  });

  it('says there is no log yet rather than printing nothing', async () => {
    expect(await showLogs({ logDir: tempDir(), isFollow: false, isPretty: false, write: () => {} })).toBe(
      false,
    );
  });
});
