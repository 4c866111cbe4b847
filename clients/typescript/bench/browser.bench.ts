// The browser client's benchmark, in Chromium against the real server:
// a local `save` to its live query's callback, a 10,000-document initial
// sync, another client's write to this client's callback (p50 and p99 over
// 1,000 writes), and the core bundle's size min+gzip. Figures are printed
// and written to docs/benchmarks.md between the ts-bench markers.

import { test } from '@playwright/test';
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, repoRoot } from '../test/support/server.js';

const SERVER = process.env.SYNC_TEST_SERVER_URL ?? '';
const APP = process.env.SYNC_TEST_APP_URL ?? '';
const INITIAL_DOCS = Number(process.env.BENCH_INITIAL_DOCS ?? 10_000);
const REMOTE_WRITES = Number(process.env.BENCH_REMOTE_WRITES ?? 1_000);
const LOCAL_SAVES = 200;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function seed(collection: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 1000) {
    const operations = [];
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      operations.push({ opId: `seed-${collection}-${i}`, action: 'create', collection, id: `d${i}`, data: { n: i, text: `document ${i}`, done: i % 2 === 0 } });
    }
    const response = await fetch(`${SERVER}/v1/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ operations }) });
    if (!response.ok) throw new Error(`seeding failed: ${response.status} ${await response.text()}`);
  }
}

test('browser client figures', async ({ page }) => {
  const suffix = Date.now().toString(36);
  const big = `bench_initial_${suffix}`;
  await seed(big, INITIAL_DOCS);
  await page.goto(`${APP}/test/browser/fixtures/blank.html`);
  if (process.env.BENCH_NO_SHARE) await page.evaluate(() => { (globalThis as any).SHARE = false; });
  if (process.env.BENCH_MEMORY) await page.evaluate(() => { (globalThis as any).MEMORY = true; });

  const figures = await page.evaluate(
    async ({ server, big, initialDocs, remoteWrites, localSaves, suffix }) => {
      const bundle: string = '/dist/sync-client.browser.js';
      const { createClient } = await import(bundle);
      const quiet = { debug() {}, warn() {} };
      const ms = (t: number) => performance.now() - t;
      const until = (check: () => boolean) =>
        new Promise<void>((resolve) => {
          const tick = () => (check() ? resolve() : setTimeout(tick, 1));
          tick();
        });

      // 1. A 10,000-document initial sync into IndexedDB, to the live query holding them all.
      let t0 = performance.now();
      const reader = await createClient({ serverUrl: server, collections: [big], databaseName: `bench-initial-${suffix}`, logger: quiet, shareConnectionAcrossTabs: (globalThis as any).SHARE !== false, ...((globalThis as any).MEMORY ? { storage: 'memory' } : {}) });
      let count = 0;
      let synced = false;
      const stopBig = reader.collection(big).watch((snap: { docs: unknown[]; fromCache: boolean }) => {
        count = snap.docs.length;
        synced = !snap.fromCache;
      });
      await until(() => count >= initialDocs && synced);
      const initialSyncMs = ms(t0);
      stopBig();
      await reader.close();

      // 2. save() to the local live query's callback.
      const local = await createClient({ serverUrl: server, collections: ['bench_local'], databaseName: `bench-local-${suffix}`, logger: quiet });
      const todos = local.collection('bench_local');
      // The callback itself stamps the time its document first appears.
      let waitingFor: { id: string; done: (at: number) => void } | undefined;
      const stopLocal = todos.watch((snap: { docs: { id: string }[] }) => {
        if (waitingFor && snap.docs.some((d) => d.id === waitingFor?.id)) waitingFor.done(performance.now());
      });
      const localMs: number[] = [];
      for (let i = 0; i < localSaves; i++) {
        const id = `l${i}`;
        const shown = new Promise<number>((done) => {
          waitingFor = { id, done };
        });
        t0 = performance.now();
        const saved = todos.save({ id, n: i });
        localMs.push((await shown) - t0);
        await saved;
      }
      stopLocal();
      await local.close();

      // 3. Another client's write to this client's live query (both over WebSocket, durable on the server).
      const collection = `bench_remote_${suffix}`;
      const writer = await createClient({ serverUrl: server, collections: [collection], storage: 'memory', logger: quiet });
      const watcher = await createClient({ serverUrl: server, collections: [collection], databaseName: `bench-remote-${suffix}`, logger: quiet });
      await until(() => writer.connectionState === 'connected' && watcher.connectionState === 'connected');
      const remote = new Map<string, number>();
      const arrived = new Map<string, number>();
      const stopRemote = watcher.collection(collection).watch((snap: { docs: { id: string; n: number }[] }) => {
        const now = performance.now();
        for (const doc of snap.docs) if (!arrived.has(doc.id)) arrived.set(doc.id, now);
      });
      for (let i = 0; i < remoteWrites; i++) {
        const id = `r${i}`;
        remote.set(id, performance.now());
        await writer.collection(collection).save({ id, n: i });
        await new Promise<void>((resolve) => {
          const check = () => (arrived.has(id) ? resolve() : requestAnimationFrame(check));
          check();
        });
      }
      stopRemote();
      const remoteMs = [...remote].map(([id, start]) => (arrived.get(id) ?? Number.NaN) - start);
      await writer.close();
      await watcher.close();
      return { initialSyncMs, localMs, remoteMs };
    },
    { server: SERVER, big, initialDocs: INITIAL_DOCS, remoteWrites: REMOTE_WRITES, localSaves: LOCAL_SAVES, suffix },
  );

  const bundle = readFileSync(path.join(packageRoot, 'dist', 'sync-client.browser.js'));
  const local = [...figures.localMs].sort((a, b) => a - b);
  const remote = [...figures.remoteMs].sort((a, b) => a - b);
  const browserVersion = page.context().browser()?.version() ?? 'unknown';
  const rows = [
    ['`save` to the local live query callback, p50 / p99', `${percentile(local, 50).toFixed(1)} / ${percentile(local, 99).toFixed(1)} ms`, 'under 16 ms'],
    [`${INITIAL_DOCS.toLocaleString('en')}-document initial sync (IndexedDB, to the live query)`, `${figures.initialSyncMs.toFixed(0)} ms`, 'under 1 s'],
    [`another client's write to this client's callback, p50 / p99 (${REMOTE_WRITES} writes)`, `${percentile(remote, 50).toFixed(1)} / ${percentile(remote, 99).toFixed(1)} ms`, ''],
    ['core bundle `dist/sync-client.browser.js`, min / min+gzip', `${(bundle.length / 1024).toFixed(1)} KB / ${(gzipSync(bundle).length / 1024).toFixed(1)} KB`, 'under 30 KB min+gzip'],
  ];
  const table = [
    `Measured ${new Date().toISOString().slice(0, 10)} with \`cd clients/typescript && npm run bench\` (also run by \`cargo xtask bench\`), Chromium ${browserVersion} headless, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown'}), server and browser on one machine over loopback, fsync on.`,
    '',
    '| metric | measured | budget |',
    '|---|---:|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
  console.log(table);
  const docPath = path.join(repoRoot, 'docs', 'benchmarks.md');
  const start = '<!-- ts-bench:start -->';
  const end = '<!-- ts-bench:end -->';
  const doc = readFileSync(docPath, 'utf8');
  const section = `${start}\n${table}\n${end}`;
  const next = doc.includes(start)
    ? doc.replace(new RegExp(`${start}[\\s\\S]*?${end}`), section)
    : `${doc.trimEnd()}\n\n## TypeScript client in Chromium\n\n${section}\n`;
  if (process.env.BENCH_WRITE_DOCS !== '0') writeFileSync(docPath, next);
});
