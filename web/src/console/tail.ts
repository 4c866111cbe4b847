// The live tail: the changes committed from now on, newest first, followed
// over the HTTP change feed (`GET /v1/changes?cursor=now`, then long-polls
// from each answer's cursor), optionally only of one namespace or
// collection. Pausing stops the long-poll; resuming starts from the head
// again.

import { h, preview, replace, when } from '../shared/dom.js';
import { describe, type Change } from './api.js';
import type { Page } from './view.js';

const WAIT_SECS = 25;
const ROWS_MAX = 500;
const RETRY_MS = 2_000;

export const tail: Page = (root, { api, params, go, remember }) => {
  const namespace = h('input', {
    type: 'text',
    value: params.get('ns') ?? '',
    placeholder: 'every namespace',
    autocomplete: 'off',
    spellcheck: false,
  });
  const collection = h('input', {
    type: 'text',
    value: params.get('c') ?? '',
    placeholder: 'every collection',
    autocomplete: 'off',
    spellcheck: false,
  });
  const pause = h('button', { type: 'button' }, 'Pause');
  const status = h('p', { class: 'status', attrs: { role: 'status' } });
  const body = h('tbody');
  let controller: AbortController | undefined;
  let running = false;
  let stopped = false;
  let seen = 0;

  const row = (change: Change) =>
    h(
      'tr',
      { class: `op-${change.op}`, data: { seq: String(change.seq), id: change.id } },
      h('td', { class: 'num' }, change.seq),
      h('td', {}, when(change.timestamp)),
      h('td', {}, change.namespace),
      h('td', {}, change.collection),
      h(
        'td',
        { class: 'mono' },
        h(
          'a',
          {
            href: '#',
            on: {
              click: (event) => {
                event.preventDefault();
                go('documents', { ns: change.namespace, c: change.collection, id: change.id });
              },
            },
          },
          change.id,
        ),
      ),
      h('td', {}, change.op),
      h('td', { class: 'num' }, change.version),
      h('td', { class: 'small' }, [change.user, change.deviceId].filter(Boolean).join(' · ') || '—'),
      h('td', { class: 'preview' }, preview(change.delta, 120)),
    );

  const follow = async () => {
    controller?.abort();
    const mine = new AbortController();
    controller = mine;
    running = true;
    pause.textContent = 'Pause';
    const filter = { namespace: namespace.value.trim(), collection: collection.value.trim() };
    let cursor = 'now';
    while (!stopped && !mine.signal.aborted) {
      try {
        const feed = await api.changes(cursor, filter, cursor === 'now' ? 0 : WAIT_SECS, mine.signal);
        cursor = feed.cursor;
        if (feed.changes.length > 0) {
          seen += feed.changes.length;
          body.prepend(...feed.changes.map(row).reverse());
          while (body.childElementCount > ROWS_MAX) body.lastElementChild?.remove();
        }
        status.textContent = `Following the log: ${seen} change${seen === 1 ? '' : 's'} since this page opened.`;
        status.classList.remove('error');
      } catch (error) {
        if (mine.signal.aborted) return;
        status.textContent = `The change feed failed: ${describe(error)}; trying again.`;
        status.classList.add('error');
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  };

  const stop = () => {
    controller?.abort();
    running = false;
  };

  pause.addEventListener('click', () => {
    if (running) {
      stop();
      pause.textContent = 'Resume';
      status.textContent = 'Paused.';
    } else {
      void follow();
    }
  });

  replace(
    root,
    h('h2', {}, 'Live tail'),
    h(
      'form',
      {
        class: 'toolbar',
        on: {
          submit: (event) => {
            event.preventDefault();
            const kept: Record<string, string> = {};
            if (namespace.value.trim()) kept['ns'] = namespace.value.trim();
            if (collection.value.trim()) kept['c'] = collection.value.trim();
            remember(kept);
            replace(body);
            seen = 0;
            void follow();
          },
        },
      },
      h('label', {}, 'Namespace ', namespace),
      h('label', {}, 'Collection ', collection),
      h('button', { type: 'submit', class: 'primary' }, 'Follow'),
      pause,
    ),
    status,
    h(
      'table',
      { class: 'grid' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['seq', 'when', 'namespace', 'collection', 'id', 'change', 'version', 'by', 'delta'].map((title) =>
            h('th', {}, title),
          ),
        ),
      ),
      body,
    ),
  );
  void follow();
  return () => {
    stopped = true;
    stop();
  };
};
