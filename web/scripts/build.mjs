// Builds the console and the demo into crates/sync-service/assets/, the
// files the server embeds (crates/sync-service/src/console.rs):
//
//   console.html, demo.html   the pages, naming /assets/<VERSION>/<file>
//   console.js, demo.js       the scripts (esbuild, minified, one file each)
//   web.css, icon.svg         the shared style sheet and icon
//   demo-sw.js                the demo's service worker (offline reloads)
//   VERSION                   a hash of the versioned files' contents
//
// The output depends on the sources and the pinned esbuild only (no time,
// no absolute path, no source map), so a rebuild of unchanged sources gives
// the same bytes. `--check` builds in memory and fails, naming the files,
// when the committed assets differ: CI runs it so they never drift from
// their sources. Prints each file's size, and its size gzipped.

import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const webRoot = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
const outDir = path.join(webRoot, '..', 'crates', 'sync-service', 'assets');
const check = process.argv.includes('--check');

// The client's sources import `idb`; bundle this package's copy (pinned to
// the client's version), whether or not the client's own packages are
// installed next to it.
const idbFromHere = {
  name: 'idb-from-web',
  setup(builder) {
    builder.onResolve({ filter: /^idb$/ }, (args) =>
      args.resolveDir === webRoot || args.resolveDir.startsWith(webRoot + path.sep)
        ? undefined
        : builder.resolve('idb', { kind: args.kind, resolveDir: webRoot }),
    );
  },
};

async function bundle(entry, define = {}, format = 'esm') {
  const result = await build({
    entryPoints: [path.join(webRoot, entry)],
    absWorkingDir: webRoot,
    bundle: true,
    format,
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    define,
    plugins: [idbFromHere],
    logLevel: 'warning',
  });
  const [file] = result.outputFiles;
  return Buffer.from(file.contents);
}

async function css(entry) {
  const result = await build({
    entryPoints: [path.join(webRoot, entry)],
    absWorkingDir: webRoot,
    bundle: true,
    minify: true,
    charset: 'utf8',
    write: false,
    logLevel: 'warning',
  });
  return Buffer.from(result.outputFiles[0].contents);
}

const versioned = new Map([
  ['console.js', await bundle('src/console/main.ts')],
  ['demo.js', await bundle('src/demo/main.ts')],
  ['web.css', await css('src/web.css')],
  ['icon.svg', readFileSync(path.join(webRoot, 'src', 'icon.svg'))],
]);

const hash = createHash('sha256');
for (const [name, bytes] of [...versioned].sort(([a], [b]) => (a < b ? -1 : 1))) {
  hash.update(`${name}\0${bytes.length}\0`);
  hash.update(bytes);
}
const version = hash.digest('hex').slice(0, 16);

const page = (name) =>
  Buffer.from(readFileSync(path.join(webRoot, 'src', name), 'utf8').replaceAll('{{VERSION}}', version));

const files = new Map([
  ...versioned,
  ['console.html', page('console/console.html')],
  ['demo.html', page('demo/demo.html')],
  ['demo-sw.js', await bundle('src/demo/sw.ts', { __ASSET_VERSION__: JSON.stringify(version) }, 'iife')],
  ['VERSION', Buffer.from(`${version}\n`)],
]);

for (const [name, bytes] of files) {
  const size = `${bytes.length} bytes, ${gzipSync(bytes, { level: 9 }).length} gzipped`;
  console.log(`${name.padEnd(13)} ${size}`);
}

if (check) {
  const differ = [];
  for (const [name, bytes] of files) {
    const committed = path.join(outDir, name);
    if (!existsSync(committed) || !readFileSync(committed).equals(bytes)) differ.push(name);
  }
  const extra = existsSync(outDir) ? readdirSync(outDir).filter((name) => !files.has(name)) : [];
  if (differ.length > 0 || extra.length > 0) {
    console.error(
      `The committed assets in crates/sync-service/assets are not the build of web/src` +
        (differ.length ? `: ${differ.join(', ')} differ` : '') +
        (extra.length ? `; not built: ${extra.join(', ')}` : '') +
        '. Run `npm run build` in web/ and commit the result.',
    );
    process.exit(1);
  }
  console.log(`the committed assets are the build of the sources (version ${version})`);
} else {
  mkdirSync(outDir, { recursive: true });
  for (const [name, bytes] of files) writeFileSync(path.join(outDir, name), bytes);
  console.log(`wrote crates/sync-service/assets (version ${version})`);
}
