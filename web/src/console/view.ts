// What every page of the console gets, and what it gives back.

import type { ConsoleApi } from './api.js';
import type { Sampler } from './sampler.js';

/** The console's shared parts, handed to each page. */
export interface Context {
  api: ConsoleApi;
  sampler: Sampler;
  /** The query of the page's address (`#/documents?ns=default&c=todos`). */
  params: URLSearchParams;
  /** Goes to another page (`documents`, `{ns, c, id}`). */
  go(page: string, params?: Record<string, string>): void;
  /** Rewrites the current page's query without drawing it again. */
  remember(params: Record<string, string>): void;
}

/** Draws a page into `root`; returns what stops its timers and requests. */
export type Page = (root: HTMLElement, context: Context) => () => void;
