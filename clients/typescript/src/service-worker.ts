// Background Sync from a service worker (seed 004): when the page that
// queued writes went away before they reached the server, the browser
// wakes the service worker with a `sync` event, and this flushes the
// stored queue over HTTP from the same IndexedDB database the pages use.
// Every operation carries its opId, so a flush racing a page is applied
// once.
//
//   import { handleBackgroundSync } from '@sync-engine/client/service-worker';
//   self.addEventListener('sync', (event) => handleBackgroundSync(event, options));

import { BACKGROUND_SYNC_TAG, openClient } from './client.js';
import type { ClientOptions } from './types.js';

/** Pushes the stored queue and pulls once over HTTP, then closes. */
export async function flushQueue(options: ClientOptions): Promise<void> {
  const client = await openClient({ ...options, enableRealtimeSync: false, shareConnectionAcrossTabs: false }, false);
  try {
    await client.syncNow();
  } finally {
    await client.close();
  }
}

/** Answers the client's Background Sync event; other tags are left alone. */
export function handleBackgroundSync(
  event: { tag: string; waitUntil(promise: Promise<unknown>): void },
  options: ClientOptions,
): void {
  if (event.tag === BACKGROUND_SYNC_TAG) event.waitUntil(flushQueue(options));
}

export { BACKGROUND_SYNC_TAG };
