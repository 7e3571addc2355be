import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildSystemPromptAppend } from './memory.js';

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'warren-memory-prompt-'));
  await fs.mkdir(path.join(root, 'global'));
  await fs.mkdir(path.join(root, 'group'));
  await fs.writeFile(path.join(root, 'global', 'CLAUDE.md'), 'The owner is called Sam.\n');
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const prompt = (isAdmin: boolean) =>
  buildSystemPromptAppend({
    assistantName: 'Warren',
    chat: 'local:main',
    groupDirectory: path.join(root, 'group'),
    globalDirectory: path.join(root, 'global'),
    extraDirectories: [],
    isAdmin,
  });

describe('the system prompt on global memory', () => {
  it('tells the admin agent that its changes go through update_global_memory and the owner', async () => {
    const text = await prompt(true);
    expect(text).toMatch(/is read-only\. To change it, call update_global_memory/);
    expect(text).toContain('the owner must approve it in the admin chat before it takes effect');
    expect(text).toContain('The owner is called Sam.');
  });

  it('tells any other agent that global memory is read-only, without offering a tool it lacks', async () => {
    const text = await prompt(false);
    expect(text).toContain('is read-only for you.');
    expect(text).not.toContain('update_global_memory');
    expect(text).toContain('The owner is called Sam.');
  });
});
