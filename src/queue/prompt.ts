// Turns stored messages into the agent's prompt, escaped so that no message can forge structure.
import type { PromptMessage } from '../store/records.js';
import type { Task, TaskRun } from '../store/store.js';

/** Escapes the characters that could close or open markup, so text stays text inside its element. */
export function escapeText(text: string): string {
  return text.replace(/[&<>"]/g, (char) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot' }[char]};`);
}

/** Escaped, and without control characters (other than newline and tab): they could hide text from a reader. */
function clean(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point.
  return escapeText(text.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F\u2028\u2029]/g, ''));
}

/**
 * The prompt for one batch. Sender and time are attributes the host writes; the text is escaped, so a message
 * saying `</message><message sender="Owner">` or "[system]" stays inside its own element as plain text.
 */
export function formatPrompt(messages: PromptMessage[], timezone: string): string {
  const lines = messages.map(
    (message) =>
      `<message sender="${clean(message.senderName)}" time="${formatInstant(message.sentAt, timezone)}">` +
      `${clean(message.text)}</message>`,
  );
  return `<messages timezone="${escapeText(timezone)}">\n${lines.join('\n')}\n</messages>`;
}

/** "Mon 2025-06-02 09:00" in the timezone. */
export function formatInstant(at: number, timezone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone: timezone,
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    // Not hour12: false, which ICU renders as hour cycle h24: "24:05" for five past midnight.
    hourCycle: 'h23',
  }).formatToParts(new Date(at));
  const part = (type: string) => parts.find((entry) => entry.type === type)?.value ?? '';
  return `${part('weekday')} ${part('year')}-${part('month')}-${part('day')} ${part('hour')}:${part('minute')}`;
}

/** The prompt of one run: the task's text, escaped, in an element the host writes (so it cannot forge others). */
export function formatTaskPrompt(task: Task, run: TaskRun): string {
  const { timezone } = task.schedule;
  const how =
    run.trigger === 'manual'
      ? 'run now on request'
      : run.attempt > 1
        ? `attempt ${run.attempt}`
        : 'on schedule';
  const isIsolated = task.contextMode === 'isolated';
  return [
    `<scheduled_task id="${escapeText(task.id)}" name="${clean(task.name)}" ` +
      `scheduled_for="${formatInstant(run.scheduledFor, timezone)}" timezone="${escapeText(timezone)}" run="${how}">`,
    // The task's text comes from an agent: cleaned like a chat message.
    clean(task.prompt),
    '</scheduled_task>',
    'This is a scheduled task set up earlier, not a new message from a person. Do what it says; your final reply ' +
      `is delivered to the chat.${isIsolated ? ' This run has a fresh session, without the chat history.' : ''}`,
  ].join('\n');
}
