// The owner's web app as the local channel serves it: the bundle built from web/ (by `npm run build`), read once at
// start and sent with the page's CSP.
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { methodNotAllowed, PAGE_CSP, securityHeaders, sendJson } from './local-http.js';

/** The web app's bundle: <package>/dist/web from src/channels/ and dist/channels/ alike. */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../dist/web/', import.meta.url));
const WEB_FILES = {
  'index.html': 'text/html',
  'app.js': 'text/javascript',
  'app.css': 'text/css',
  'favicon.svg': 'image/svg+xml',
};

export interface WebApp {
  /** Answers a request for a path outside /api (after the access checks): a file of the bundle, or 404. */
  serve(method: string, pathname: string, response: ServerResponse): void;
}

export function createWebApp(dir: string, assistantName: string): WebApp {
  const web = loadWebApp(dir, assistantName);
  return {
    serve(method, pathname, response) {
      const asset = pathname === '/' ? web.get('index.html') : web.get(pathname.slice(1));
      if (!asset) {
        sendJson(response, 404, { error: `not found: ${pathname}` });
      } else if (method !== 'GET' && method !== 'HEAD') {
        methodNotAllowed(response, 'GET, HEAD');
      } else {
        response.writeHead(200, {
          ...securityHeaders(PAGE_CSP),
          'content-type': `${asset.type}; charset=utf-8`,
        });
        response.end(asset.body);
      }
    },
  };
}

/** The built page, read once; without a build, a page that says how to make one (rather than a bare 404). */
function loadWebApp(dir: string, assistantName: string): Map<string, { type: string; body: string }> {
  const files = new Map<string, { type: string; body: string }>();
  try {
    for (const [name, type] of Object.entries(WEB_FILES))
      files.set(name, { type, body: readFileSync(`${dir}/${name}`, 'utf8') });
  } catch {
    const body =
      '<!doctype html><title>Warren</title><p>The web app is not built: run <code>npm run build</code>.</p>';
    return new Map([['index.html', { type: 'text/html', body }]]);
  }
  // The one dynamic bit: the assistant's name, as an attribute the script reads (escaped: it is the owner's text).
  const index = files.get('index.html') as { type: string; body: string };
  index.body = index.body.replaceAll('%ASSISTANT%', escapeHtml(assistantName));
  return files;
}

function escapeHtml(text: string): string {
  const entities: Record<string, string> = {
    '&': '&amp;',
    '<': '&lt;',
    '>': '&gt;',
    '"': '&quot;',
    "'": '&#39;',
  };
  return text.replace(/[&<>"']/g, (char) => entities[char] ?? char);
}
