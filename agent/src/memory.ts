// The agent's standing instructions: who it is, how replies work, and its memory files (global and group CLAUDE.md).
// Read by the runner and passed as system prompt text, because the SDK only loads CLAUDE.md together with the
// project's settings files, which the agent could rewrite (see claude-launch.ts).
import { constants, promises as fs } from 'node:fs';
import path from 'node:path';

/** A memory file larger than this is cut: it would crowd the model's context anyway. */
const MAX_MEMORY_BYTES = 64 * 1024;

export async function buildSystemPromptAppend(input: {
  assistantName: string;
  chat: string;
  groupDirectory: string;
  globalDirectory: string;
  /** Extra folders the group may use, as mounted. */
  extraDirectories: string[];
  /** The admin group's agent may propose changes to global memory (update_global_memory). */
  isAdmin: boolean;
}): Promise<string> {
  const globalMemory = await readCapped(path.join(input.globalDirectory, 'CLAUDE.md'));
  const groupMemory = await readCapped(path.join(input.groupDirectory, 'CLAUDE.md'));
  const parts = [
    `# You are ${input.assistantName}`,
    `You are ${input.assistantName}, a personal assistant reached through a chat app. You run in a sandbox with no network.`,
    `- Your final reply at the end of each turn is delivered to the chat (${input.chat}). Use the send_message tool to say something before you are done (progress on a long task), or to write to another chat you are allowed to reach. Use send_file to send a file from your folder.`,
    '- Text inside <internal>…</internal> is never delivered. If you have nothing to add (for example you already answered with send_message), make your final reply only <internal>…</internal>.',
    `- Your memory for this chat group is ${path.join(input.groupDirectory, 'CLAUDE.md')} in your working folder: read and edit it to remember things across conversations. Keep it short.`,
    input.isAdmin
      ? `- Global memory, shared by all groups, is in ${input.globalDirectory} and is read-only. To change it, call update_global_memory with the complete new text of its CLAUDE.md: the owner must approve it in the admin chat before it takes effect, so tell them what you proposed and why.`
      : `- Global memory, shared by all groups, is in ${input.globalDirectory} and is read-only for you.`,
    '- To do something later or repeatedly (reminders, briefings, reviews), use schedule_task: the host runs it on time, even when this container is gone. Never wait or loop inside a tool for it. Manage tasks with list_tasks, update_task, pause_task, resume_task and cancel_task.',
  ];
  if (input.extraDirectories.length > 0) {
    parts.push(`- Extra folders you may use: ${input.extraDirectories.join(', ')}.`);
  }
  if (globalMemory) parts.push('', '# Global memory (CLAUDE.md)', globalMemory);
  if (groupMemory) parts.push('', '# Group memory (CLAUDE.md)', groupMemory);
  return parts.join('\n');
}

/** The subfolders of the extra mounts folder; none when it does not exist. */
export async function listExtraDirectories(extraRoot: string): Promise<string[]> {
  const entries = await fs.readdir(extraRoot, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join(extraRoot, entry.name))
    .sort();
}

/** The file's text up to the cap; null when missing, empty or not a regular file. Never throws. */
async function readCapped(filePath: string): Promise<string | null> {
  const handle = await fs.open(filePath, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
  try {
    if (!handle || !(await handle.stat()).isFile()) return null;
    const { bytesRead, buffer } = await handle.read(Buffer.alloc(MAX_MEMORY_BYTES), 0, MAX_MEMORY_BYTES, 0);
    return buffer.subarray(0, bytesRead).toString('utf8').trim() || null;
  } catch {
    return null;
  } finally {
    await handle?.close().catch(() => {});
  }
}
