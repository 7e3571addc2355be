// Bundles the owner's web app (web/src) into dist/web: one script, one stylesheet, the page and its icon. Run by
// `npm run build` (and so by `npm install`'s prepare); tests call buildWebApp() into a directory of their own.
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const WEB_ROOT = path.dirname(fileURLToPath(import.meta.url));

export async function buildWebApp(outDir = path.join(WEB_ROOT, '..', 'dist', 'web')): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { app: path.join(WEB_ROOT, 'src', 'main.ts') },
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    outdir: outDir,
    logLevel: 'warning',
  });
  for (const file of ['index.html', 'favicon.svg'])
    copyFileSync(path.join(WEB_ROOT, file), path.join(outDir, file));
  return outDir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildWebApp(process.argv[2]);
}
