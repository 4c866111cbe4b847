// Builds dist/sync-client.browser.js: the whole client as one ES module
// with no bare imports (idb bundled in), loadable with
// <script type="module"> and no bundler. Prints its size min+gzip.

import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const outfile = 'dist/sync-client.browser.js';
await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  outfile,
});
const bytes = readFileSync(outfile);
console.log(`${outfile}: ${bytes.length} bytes minified, ${gzipSync(bytes).length} bytes gzip`);
