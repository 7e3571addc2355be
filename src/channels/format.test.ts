import { describe, expect, it } from 'vitest';
import { checkTelegramHtml } from '../../test/fake-telegram-api.js';
import {
  htmlVisibleText,
  splitMarkdown,
  splitText,
  toPlainText,
  toSlackMrkdwn,
  toTelegramHtml,
  toWhatsApp,
} from './format.js';

describe('Markdown for Telegram (HTML parse mode)', () => {
  it('renders bold, italic, strike, code, links, headings, quotes and lists', () => {
    const markdown = [
      '# Plan',
      '**Bold** and *italic* and _also_ and ~~gone~~ and `a<b`',
      'See [the docs](https://example.com/a?b=1&c=2).',
      '> quoted',
      '> twice',
      '- one',
      '2. two',
    ].join('\n');
    expect(toTelegramHtml(markdown)).toBe(
      [
        '<b>Plan</b>',
        '<b>Bold</b> and <i>italic</i> and <i>also</i> and <s>gone</s> and <code>a&lt;b</code>',
        'See <a href="https://example.com/a?b=1&amp;c=2">the docs</a>.',
        '<blockquote>quoted\ntwice</blockquote>',
        '• one',
        '2. two',
      ].join('\n'),
    );
  });

  it('escapes everything Telegram would read as markup', () => {
    expect(toTelegramHtml('if a < b && c > d then "x"')).toBe(
      'if a &lt; b &amp;&amp; c &gt; d then &quot;x&quot;',
    );
  });

  it('renders fenced code blocks with their language, even when the fence never closes', () => {
    expect(toTelegramHtml('```ts\nconst a = 1 < 2;\n```')).toBe(
      '<pre><code class="language-ts">const a = 1 &lt; 2;</code></pre>',
    );
    expect(toTelegramHtml('```\nunclosed')).toBe('<pre>unclosed</pre>');
  });

  it('leaves snake_case, lone stars and unsafe links alone', () => {
    expect(toTelegramHtml('my_var_name and 2 * 3 * 4')).toBe('my_var_name and 2 * 3 * 4');
    expect(toTelegramHtml('[click](javascript:alert(1))')).toBe('click (javascript:alert(1))');
  });

  it('always produces HTML that Telegram can parse, whatever the Markdown', () => {
    const nasty = [
      '**bold *nested** italic*',
      '<script>alert(1)</script>',
      '***',
      '**unclosed',
      '`code **not bold**`',
      '[**bold link**](https://x.test) & <b>',
      '_a *b_ c*',
      '~~a **b~~ c**',
      '&amp; &#x41;',
    ];
    for (const markdown of nasty) {
      const html = toTelegramHtml(markdown);
      expect(checkTelegramHtml(html), `${markdown} → ${html}`).toBeNull();
    }
  });

  it('counts visible text the way Telegram does', () => {
    expect(htmlVisibleText('<b>a &lt; b</b> &amp; <a href="x">c</a>')).toBe('a < b & c');
  });
});

describe('Markdown for WhatsApp', () => {
  it('uses WhatsApp marks: *bold*, _italic_, ~strike~, monospace; links as text (url)', () => {
    expect(toWhatsApp('**Done** and *soon* and ~~no~~ and `ls -la`')).toBe(
      '*Done* and _soon_ and ~no~ and `ls -la`',
    );
    expect(toWhatsApp('## Title\nsee [site](https://x.test)')).toBe('*Title*\nsee site (https://x.test)');
    expect(toWhatsApp('```\ncode\n```')).toBe('```\ncode\n```');
  });
});

describe('plain text', () => {
  it('drops the marks and keeps the words', () => {
    expect(toPlainText('**Bold** [link](https://x.test) `code`')).toBe('Bold link (https://x.test) code');
  });
});

describe('splitting', () => {
  it('cuts at paragraphs, then lines, then spaces, never above the limit', () => {
    const text = `${'a'.repeat(30)}\n\n${'b'.repeat(30)} ${'c'.repeat(30)}`;
    expect(splitText(text, 40)).toEqual(['a'.repeat(30), 'b'.repeat(30), 'c'.repeat(30)]);
    const hard = 'x'.repeat(100);
    expect(splitText(hard, 40).map((part) => part.length)).toEqual([40, 40, 20]);
  });

  it('never cuts an emoji in half', () => {
    const text = `${'x'.repeat(39)}😀${'y'.repeat(10)}`;
    const parts = splitText(text, 40);
    expect(parts.join('')).toBe(text);
    for (const part of parts) expect(part).not.toMatch(/[\ud800-\udbff]$/);
  });

  it('closes a code block cut in two and reopens it in the next part', () => {
    const code = Array.from({ length: 40 }, (_, index) => `line ${index}`).join('\n');
    const parts = splitMarkdown(`Intro\n\`\`\`py\n${code}\n\`\`\`\nOutro`, 120);
    expect(parts.length).toBeGreaterThan(2);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(120);
      expect((part.match(/^```/gm) ?? []).length % 2).toBe(0);
    }
    expect(parts[1]?.startsWith('```py\n')).toBe(true);
  });

  it('gives no part for empty text', () => {
    expect(splitMarkdown('   ', 100)).toEqual([]);
  });
});

describe('Slack mrkdwn', () => {
  it('renders bold, italics, strike, code, links and lists as Slack marks, escaping &, < and >', () => {
    const markdown = [
      '# Plan',
      '**Total:** 3 < 4 & _soon_ ~~never~~ `a<b`',
      '- see [the docs](https://example.com/a?b=1|2)',
      '```',
      'if (a > b) {}',
      '```',
    ].join('\n');
    expect(toSlackMrkdwn(markdown)).toBe(
      [
        '*Plan*',
        '*Total:* 3 &lt; 4 &amp; _soon_ ~never~ `a&lt;b`',
        '• see <https://example.com/a?b=1%7C2|the docs>',
        '```',
        'if (a &gt; b) {}',
        '```',
      ].join('\n'),
    );
  });
});
