// The console's entry point: finds out whether the server wants a token
// (`GET /v1/stats` answered 401 means jwt mode), asks for an admin token
// when it does (kept in this tab's session storage, sent as a bearer
// token), explains a refused one, and then draws the page the address
// names: overview, devices, conflicts, documents or live tail.

import { h, replace } from '../shared/dom.js';
import { ConsoleApi, HttpError, NetworkError, describe, storeToken, storedToken } from './api.js';
import { conflicts } from './conflicts.js';
import { devices } from './devices.js';
import { documents } from './documents.js';
import { overview } from './overview.js';
import { Sampler } from './sampler.js';
import { tail } from './tail.js';
import type { Context, Page } from './view.js';

const PAGES: { name: string; title: string; page: Page }[] = [
  { name: 'overview', title: 'Overview', page: overview },
  { name: 'devices', title: 'Devices', page: devices },
  { name: 'conflicts', title: 'Conflicts', page: conflicts },
  { name: 'documents', title: 'Documents', page: documents },
  { name: 'tail', title: 'Live tail', page: tail },
];

const api = new ConsoleApi();
const sampler = new Sampler(api);
const main = document.getElementById('main')!;
const nav = document.getElementById('nav')!;
const session = document.getElementById('session')!;

/** `#/documents?ns=a&c=b` as the page's name and query. */
function route(): { name: string; params: URLSearchParams } {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const name = PAGES.some((page) => page.name === path) ? path : 'overview';
  return { name, params: new URLSearchParams(query) };
}

function address(name: string, params: Record<string, string> = {}): string {
  const query = new URLSearchParams(params).toString();
  return `#/${name}${query ? `?${query}` : ''}`;
}

let unmount: (() => void) | undefined;
let pendingBadge: HTMLElement | undefined;
let listening = false;

function draw(): void {
  unmount?.();
  const { name, params } = route();
  for (const link of nav.querySelectorAll('a')) {
    link.classList.toggle('current', link.dataset['page'] === name);
  }
  const context: Context = {
    api,
    sampler,
    params,
    go: (page, query) => {
      location.hash = address(page, query);
    },
    remember: (query) => {
      history.replaceState(null, '', address(name, query));
    },
  };
  const page = PAGES.find((entry) => entry.name === name)!;
  document.title = `${page.title} · sync-server console`;
  const root = h('div', { class: 'page', data: { page: name } });
  replace(main, root);
  unmount = page.page(root, context);
}

function signedIn(jwt: boolean): void {
  replace(
    nav,
    ...PAGES.map(({ name, title }) => {
      const link = h('a', { href: address(name), data: { page: name } }, title);
      if (name === 'conflicts') {
        pendingBadge = h('span', { class: 'count', attrs: { 'aria-label': 'pending conflicts' } });
        link.append(' ', pendingBadge);
      }
      return link;
    }),
    h('a', { href: '/demo', target: '_blank', rel: 'noopener' }, 'Todo demo ↗'),
  );
  replace(
    session,
    jwt
      ? h(
          'button',
          {
            type: 'button',
            on: {
              click: () => {
                storeToken(undefined);
                location.reload();
              },
            },
          },
          'Forget token',
        )
      : h('span', { class: 'badge warn', title: 'auth = none: every request is user anonymous' }, 'no authentication'),
  );
  if (!listening) {
    listening = true;
    sampler.listen(() => {
      const latest = sampler.latest;
      if (pendingBadge) pendingBadge.textContent = latest && latest.pendingConflicts > 0 ? String(latest.pendingConflicts) : '';
    });
    window.addEventListener('hashchange', draw);
  }
  api.onUnauthorized = (message) => {
    sampler.stop();
    unmount?.();
    unmount = undefined;
    storeToken(undefined);
    askToken(`The server no longer accepts the token: ${message}`);
  };
  sampler.start();
  draw();
}

/** The token form, with `problem` said above it. */
function askToken(problem?: string): void {
  replace(nav);
  replace(session);
  const token = h('input', {
    type: 'password',
    name: 'token',
    autocomplete: 'off',
    spellcheck: false,
    required: true,
    placeholder: 'eyJhbGciOi…',
  });
  replace(
    main,
    h(
      'form',
      {
        class: 'panel signin',
        on: {
          submit: (event) => {
            event.preventDefault();
            storeToken(token.value.trim());
            void start();
          },
        },
      },
      h('h2', {}, 'Sign in'),
      h(
        'p',
        {},
        'This server authenticates with JSON Web Tokens. Paste an admin token (claims ',
        h('code', {}, '"admin": true'),
        ' and ',
        h('code', {}, '"ns": ["*"]'),
        ' to see every namespace; the documents, conflicts and changes shown are those of the token’s ',
        h('code', {}, 'ns'),
        ' and ',
        h('code', {}, 'ro'),
        ' namespaces). It is kept in this tab only, until the tab closes.',
      ),
      problem ? h('p', { class: 'error', attrs: { role: 'alert' } }, problem) : null,
      h('label', {}, 'Token ', token),
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    ),
  );
  token.focus();
}

/** Asks the server who we are, then signs in or asks for a token. */
async function start(): Promise<void> {
  const token = storedToken();
  try {
    await api.stats();
    signedIn(token !== undefined);
  } catch (error) {
    if (error instanceof HttpError && error.status === 401) {
      storeToken(undefined);
      askToken(token === undefined ? undefined : `The server refused this token: ${error.body.message}.`);
    } else if (error instanceof HttpError && error.status === 403) {
      storeToken(undefined);
      askToken(
        `This token is valid but is not an admin token: ${error.body.message}. ` +
          'The console needs a token with the claim "admin": true.',
      );
    } else {
      replace(
        main,
        h(
          'section',
          { class: 'panel' },
          h('h2', {}, 'The console cannot start'),
          h('p', { class: 'error', attrs: { role: 'alert' } }, error instanceof NetworkError ? 'The server cannot be reached.' : describe(error)),
          h('button', { type: 'button', on: { click: () => void start() } }, 'Try again'),
        ),
      );
    }
  }
}

void start();
