// The todo demo (`GET /demo`): the web counterpart of the Rust SDK's
// `examples/todo`, on the TypeScript client. Todos live in IndexedDB and
// sync with this server; every tab of the browser shares one connection,
// edits made offline wait in the queue (the pending count) and go out when
// the network is back, and a service worker keeps the page itself so a
// reload works offline too.
//
// `?namespace=` picks the namespace (default `default`), `?db=` the
// IndexedDB database. In jwt mode the page asks for a token (or takes
// `?token=`) and keeps it in this tab's session storage.

import { createClient, HttpError } from '../../../clients/typescript/src/index.js';
import type { ConnectionState } from '../../../clients/typescript/src/types.js';
import { h, replace } from '../shared/dom.js';

const TOKEN_KEY = 'sync-demo-token';
const params = new URLSearchParams(location.search);
const namespace = params.get('namespace') ?? 'default';
const main = document.getElementById('main')!;

interface Todo {
  [key: string]: string | boolean;
  text: string;
  done: boolean;
  createdAt: string;
}

function token(): string | undefined {
  return params.get('token') ?? sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Whether the server wants a token this page does not have (offline: go on with what there is). */
async function needsToken(): Promise<string | undefined> {
  const headers: Record<string, string> = {};
  const current = token();
  if (current) headers['authorization'] = `Bearer ${current}`;
  try {
    const query = new URLSearchParams({ cursor: 'now', namespace });
    const response = await fetch(`/v1/changes?${query}`, { headers });
    if (response.status !== 401 && response.status !== 403) return undefined;
    const body = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
    const reason = body?.error?.message ?? `HTTP ${response.status}`;
    return current ? `The server refused this token: ${reason}.` : 'This server needs a token.';
  } catch {
    return undefined;
  }
}

function askToken(problem: string): void {
  sessionStorage.removeItem(TOKEN_KEY);
  const input = h('input', { type: 'password', required: true, autocomplete: 'off', placeholder: 'a token for this namespace' });
  replace(
    main,
    h(
      'form',
      {
        class: 'panel signin',
        on: {
          submit: (event) => {
            event.preventDefault();
            sessionStorage.setItem(TOKEN_KEY, input.value.trim());
            location.reload();
          },
        },
      },
      h('h2', {}, 'Sign in'),
      h('p', { class: 'error', attrs: { role: 'alert' } }, problem),
      h('p', {}, `A JSON Web Token whose ns claim includes “${namespace}”; kept in this tab until it closes.`),
      h('label', {}, 'Token ', input),
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    ),
  );
}

async function run(): Promise<void> {
  const problem = await needsToken();
  if (problem) {
    askToken(problem);
    return;
  }
  const databaseName = params.get('db');
  const client = await createClient({
    serverUrl: location.origin,
    collections: ['todos'],
    namespace,
    token: () => token(),
    reconnectDelayMs: 500,
    ...(databaseName ? { databaseName } : {}),
    device: { name: 'todo demo', platform: 'web' },
  });
  const todos = client.collection('todos');
  (window as unknown as { syncClient: unknown }).syncClient = client;

  const state = h('span', { id: 'state', data: { state: client.connectionState } }, client.connectionState);
  const offline = h('span', { id: 'offline' }, 'offline: edits wait here');
  const pending = h('span', { id: 'pending', data: { count: '0' } });
  const text = h('input', { id: 'text', type: 'text', placeholder: 'What needs doing?', autocomplete: 'off', required: true });
  const list = h('ul', { id: 'list', data: { count: '0' } });
  const note = h('p', { class: 'error', attrs: { role: 'alert' } });

  const showOffline = () => {
    offline.hidden = navigator.onLine && client.connectionState === 'connected';
  };
  const showState = (value: ConnectionState) => {
    state.textContent = value;
    state.dataset['state'] = value;
    showOffline();
  };
  client.on('stateChanged', showState);
  window.addEventListener('online', showOffline);
  window.addEventListener('offline', showOffline);
  showState(client.connectionState);

  const countPending = async () => {
    const count = await client.pendingCount();
    pending.textContent = count ? `${count} waiting` : '';
    pending.dataset['count'] = String(count);
  };
  client.onLocalChange(() => void countPending());
  void countPending();
  client.on('rejected', (refused) => {
    note.textContent = `The server refused a change: ${refused.code}: ${refused.message}`;
  });
  client.on('error', (event) => {
    if (event.code === 'unauthorized' || (event.cause instanceof HttpError && event.cause.status === 401)) {
      void client.close();
      askToken(`The server refused the token: ${event.message}.`);
    }
  });

  replace(
    main,
    h(
      'header',
      {},
      h('h1', {}, 'Todos'),
      state,
      offline,
      pending,
    ),
    h(
      'form',
      {
        class: 'add',
        on: {
          submit: (event) => {
            event.preventDefault();
            const value = text.value.trim();
            if (!value) return;
            text.value = '';
            void todos.save({ text: value, done: false, createdAt: new Date().toISOString() } satisfies Todo);
          },
        },
      },
      text,
      h('button', { type: 'submit', class: 'primary' }, 'Add'),
    ),
    note,
    list,
    h(
      'footer',
      {},
      `Namespace ${namespace}. Open this page in another tab or browser and edit in both; go offline, keep editing, reload: nothing is lost. `,
      h('a', { href: location.href, target: '_blank', rel: 'noopener' }, 'Open another tab'),
      ' · ',
      h('a', { href: '/' }, 'Console'),
    ),
  );

  todos.orderBy('createdAt').watch((snapshot) => {
    replace(
      list,
      ...snapshot.docs.map((todo) => {
        const done = todo['done'] === true;
        const box = h('input', {
          type: 'checkbox',
          checked: done,
          attrs: { 'aria-label': 'done' },
          on: { change: () => void todos.update(todo.id, { done: box.checked }) },
        });
        return h(
          'li',
          { class: done ? 'done' : '', data: { id: todo.id } },
          box,
          h('span', {}, String(todo['text'] ?? '')),
          h('button', { type: 'button', on: { click: () => void todos.delete(todo.id) } }, 'Delete'),
        );
      }),
    );
    list.dataset['count'] = String(snapshot.docs.length);
  });
  text.focus();
}

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/demo-sw.js', { scope: '/demo' }).catch((error: unknown) => {
    console.warn('the page will not load offline: no service worker', error);
  });
}

void run().catch((error: unknown) => {
  replace(main, h('p', { class: 'error', attrs: { role: 'alert' } }, `The demo cannot start: ${String(error)}`));
});
