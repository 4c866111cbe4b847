// The demo's service worker (scope `/demo`): keeps the page and its assets
// so the demo reloads offline. The page is fetched from the network first
// (a new version shows when online) and from the cache when that fails;
// the versioned assets come from the cache. The API's requests pass
// through untouched: the TypeScript client keeps the data and the queue in
// IndexedDB. A new build has a new version, so a new worker whose cache
// replaces the old one.

declare const __ASSET_VERSION__: string;

const worker = self as unknown as ServiceWorkerGlobalScope;

const CACHE = `sync-demo-${__ASSET_VERSION__}`;
const PAGE = '/demo';
const SHELL = [PAGE, ...['demo.js', 'web.css', 'icon.svg'].map((file) => `/assets/${__ASSET_VERSION__}/${file}`)];

worker.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((name) => name.startsWith('sync-demo-') && name !== CACHE).map((name) => caches.delete(name))),
      )
      .then(() => worker.clients.claim()),
  );
});

async function page(request: Request): Promise<Response> {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(PAGE, response.clone());
    return response;
  } catch (error) {
    const kept = await cache.match(PAGE);
    if (kept) return kept;
    throw error;
  }
}

async function asset(request: Request): Promise<Response> {
  const kept = await caches.match(request);
  return kept ?? fetch(request);
}

worker.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== worker.location.origin || event.request.method !== 'GET') return;
  if (event.request.mode === 'navigate' && url.pathname === PAGE) {
    event.respondWith(page(event.request));
  } else if (url.pathname.startsWith(`/assets/${__ASSET_VERSION__}/`)) {
    event.respondWith(asset(event.request));
  }
});
