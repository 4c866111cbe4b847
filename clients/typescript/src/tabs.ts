// One connection for all the tabs of an origin: Web Locks elect the tab
// that holds it (the lock is held until that tab closes, then the next
// waiting tab gets it), and a BroadcastChannel carries what one tab did to
// the shared storage to the others, the holder's connection state and
// events, and requests to the holder (push now, sync now).

import type { ClientEvents, ConnectionState } from './types.js';

/** What tabs tell each other. */
export type TabMessage =
  /** Stored state changed: re-read these documents (their queued entries too when `queue`), and whole collections. */
  | { kind: 'touched'; docs: [string, string][]; collections: string[]; queue: boolean }
  /** A tab queued a write: the holder should push. */
  | { kind: 'wake' }
  /** The holder's connection state and which collections are in step with the server. */
  | { kind: 'state'; state: ConnectionState; caughtUp: string[] }
  /** Events the holder raised, in order. */
  | { kind: 'events'; events: { event: keyof ClientEvents; payload: unknown }[] }
  /** A tab marked the link metered or not: the holder sends low-priority writes only when not. */
  | { kind: 'metered'; metered: boolean }
  /** A tab asks the holder to sync now. */
  | { kind: 'syncNow'; request: string }
  /** The holder's answer. */
  | { kind: 'synced'; request: string; error?: string }
  /** A tab arrived and wants the holder's state. */
  | { kind: 'hello' };

/** Whether this environment can share one connection between tabs. */
export function canShareTabs(): boolean {
  const nav = (globalThis as { navigator?: { locks?: unknown } }).navigator;
  return typeof BroadcastChannel !== 'undefined' && nav?.locks !== undefined;
}

/** This tab's link to the others. */
export class TabLink {
  private readonly channel: BroadcastChannel;
  private release: (() => void) | undefined;
  private readonly abort = new AbortController();
  private leader = false;

  constructor(
    private readonly lockName: string,
    private readonly onMessage: (message: TabMessage) => void,
  ) {
    this.channel = new BroadcastChannel(lockName);
    this.channel.onmessage = (event: MessageEvent<TabMessage>) => this.onMessage(event.data);
  }

  /** Whether this tab holds the connection. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** Waits for the lock in the background; `becameLeader` runs once this tab holds it. */
  campaign(becameLeader: () => void): void {
    const locks = (globalThis as unknown as { navigator: { locks: LockManager } }).navigator.locks;
    locks
      .request(this.lockName, { signal: this.abort.signal }, () => {
        this.leader = true;
        becameLeader();
        return new Promise<void>((resolve) => {
          this.release = resolve;
        });
      })
      .catch(() => {
        // Aborted on close before this tab got the lock.
      });
  }

  /** Tells the other tabs. */
  post(message: TabMessage): void {
    try {
      this.channel.postMessage(message);
    } catch {
      // Closed.
    }
  }

  /** Leaves: gives up the lock (or the wait for it) and closes the channel. */
  close(): void {
    this.abort.abort();
    this.release?.();
    this.leader = false;
    this.channel.close();
  }
}
