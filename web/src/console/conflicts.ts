// The conflict inbox, after seed 004's conflict modal: every pending
// conflict with the base, server and client values of each conflicting
// field side by side, resolved with the server's version, the client's,
// the conflict engine's merge of both, or a document edited here
// (`POST /v1/conflicts/{id}/resolve`). The outcome (the document as the
// server now has it) shows in place at once; recently resolved conflicts
// follow the pending ones.

import type { JsonValue } from '../../../clients/typescript/src/core/json.js';
import { h, json, jsonFitted, preview, replace, when } from '../shared/dom.js';
import { describe, type ConflictRecord, type JsonObject, type ServerDocument, type Strategy } from './api.js';
import type { Page } from './view.js';

const REFRESH_MS = 5_000;
const PENDING_SHOWN = 200;
const RESOLVED_SHOWN = 20;

const CHOICES: { strategy: Strategy; label: string; hint: string }[] = [
  { strategy: 'server_wins', label: 'Use server version', hint: 'keep the document as the server has it' },
  { strategy: 'client_wins', label: 'Use client version', hint: 'apply the client’s edit over the server’s' },
  { strategy: 'merge', label: 'Merge both', hint: 'let the conflict engine merge both edits field by field' },
];

const STRATEGY_NAMES: Record<string, string> = {
  server_wins: 'the server version',
  client_wins: 'the client version',
  merge: 'a merge of both',
  manual: 'an edited document',
};

/** The value at `path`: a top-level field, else a dotted path into nested objects. */
function at(object: JsonObject | undefined, path: string): JsonValue | undefined {
  if (object === undefined) return undefined;
  if (Object.hasOwn(object, path)) return object[path];
  let value: JsonValue | undefined = object;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) {
      return undefined;
    }
    value = (value as JsonObject)[part];
  }
  return value;
}

/**
 * Seed 004's "merge both" as a starting point for an edit: the document as
 * the server has it now with the client's fields over it, arrays joined.
 */
function mergedDraft(server: JsonObject, clientData: JsonObject): JsonObject {
  const draft: JsonObject = { ...server, ...clientData };
  for (const [field, value] of Object.entries(clientData)) {
    const current = server[field];
    if (Array.isArray(value) && Array.isArray(current)) {
      const seen = new Set<string>();
      draft[field] = [...value, ...current].filter((item) => {
        const key = JSON.stringify(item);
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
    }
  }
  return draft;
}

function cell(value: JsonValue | undefined, absent: string): HTMLElement {
  return value === undefined ? h('td', { class: 'muted' }, absent) : h('td', {}, h('pre', {}, jsonFitted(value)));
}

function sides(conflict: ConflictRecord): HTMLElement {
  const { serverData, clientData, conflictFields } = conflict.conflictData;
  const base = conflict.baseData;
  return h(
    'table',
    { class: 'sides' },
    h(
      'thead',
      {},
      h('tr', {}, h('th', {}, 'field'), h('th', {}, 'base'), h('th', {}, 'server version'), h('th', {}, 'client version')),
    ),
    h(
      'tbody',
      {},
      ...conflictFields.map((field) =>
        h(
          'tr',
          { data: { field } },
          h('th', { class: 'mono' }, field),
          cell(at(base, field), base === undefined ? 'unknown' : 'absent'),
          cell(at(serverData, field), 'absent'),
          cell(at(clientData, field), 'not sent'),
        ),
      ),
    ),
  );
}

function outcome(strategy: Strategy, document: ServerDocument): HTMLElement {
  return h(
    'div',
    { class: 'outcome' },
    h(
      'p',
      {},
      `Resolved with ${STRATEGY_NAMES[strategy] ?? strategy} (${strategy}): the document is now version ${document.version}.`,
    ),
    h('pre', { class: 'document' }, json(document.data)),
  );
}

/** The card of one conflict; `resolved` is called with the outcome once it is resolved here. */
function card(
  conflict: ConflictRecord,
  context: Parameters<Page>[1],
  resolved: (strategy: Strategy, document: ServerDocument) => void,
): HTMLElement {
  const { api, go } = context;
  const error = h('p', { class: 'error', attrs: { role: 'alert' } });
  const actions = h('div', { class: 'actions' });
  const editor = h('div', { class: 'editor' });
  editor.hidden = true;
  const badge = h('span', { class: `badge ${conflict.status}` }, conflict.status);
  const result = h('div');

  const resolve = async (strategy: Strategy, resolvedData?: JsonObject) => {
    error.textContent = '';
    for (const button of article.querySelectorAll('button')) button.disabled = true;
    try {
      const answer = await api.resolve(conflict.id, resolvedData ? { strategy, resolvedData } : { strategy });
      article.dataset['status'] = 'resolved';
      badge.textContent = 'resolved';
      badge.className = 'badge resolved';
      actions.remove();
      editor.remove();
      replace(result, outcome(strategy, answer.document));
      resolved(strategy, answer.document);
    } catch (failure) {
      error.textContent = `Not resolved: ${describe(failure)}`;
      for (const button of article.querySelectorAll('button')) button.disabled = false;
    }
  };

  if (conflict.status === 'pending') {
    const text = h('textarea', { rows: 10, spellcheck: false });
    const editError = h('p', { class: 'error' });
    replace(
      editor,
      h('label', {}, 'The whole document after resolution (JSON):'),
      text,
      editError,
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          {
            class: 'primary',
            type: 'button',
            on: {
              click: () => {
                let data: unknown;
                try {
                  data = JSON.parse(text.value);
                } catch (failure) {
                  editError.textContent = `Not valid JSON: ${failure instanceof Error ? failure.message : String(failure)}`;
                  return;
                }
                if (data === null || typeof data !== 'object' || Array.isArray(data)) {
                  editError.textContent = 'The document must be a JSON object.';
                  return;
                }
                editError.textContent = '';
                void resolve('manual', data as JsonObject);
              },
            },
          },
          'Resolve with this document',
        ),
        h('button', { type: 'button', on: { click: () => (editor.hidden = true) } }, 'Cancel'),
      ),
    );
    replace(
      actions,
      ...CHOICES.map(({ strategy, label, hint }) =>
        h('button', { type: 'button', title: hint, data: { strategy }, on: { click: () => void resolve(strategy) } }, label),
      ),
      h(
        'button',
        {
          type: 'button',
          title: 'write the document by hand',
          data: { strategy: 'manual' },
          on: {
            click: () => {
              editor.hidden = !editor.hidden;
              if (editor.hidden || text.value !== '') return;
              // The draft starts from the whole document as it is now (a
              // conflict keeps only the fields each side changed).
              const { clientData, serverData } = conflict.conflictData;
              text.disabled = true;
              text.value = 'Reading the document…';
              api
                .document(conflict.namespace, conflict.collection, conflict.serverId)
                .then((document) => mergedDraft(document.data, clientData))
                .catch(() => mergedDraft(serverData, clientData))
                .then((draft) => {
                  text.value = json(draft);
                  text.disabled = false;
                });
            },
          },
        },
        'Edit…',
      ),
    );
  } else if (conflict.resolvedData) {
    replace(
      result,
      h(
        'div',
        { class: 'outcome' },
        h('p', {}, `Resolved ${when(conflict.resolvedAt)} (strategy ${conflict.strategy}).`),
        h('pre', { class: 'document' }, preview(conflict.resolvedData, 400)),
      ),
    );
  }

  const open = h(
    'a',
    {
      href: '#',
      on: {
        click: (event) => {
          event.preventDefault();
          go('documents', { ns: conflict.namespace, c: conflict.collection, id: conflict.serverId });
        },
      },
    },
    `${conflict.collection}/${conflict.serverId}`,
  );
  const article: HTMLElement = h(
    'article',
    { class: 'conflict', data: { conflictId: conflict.id, status: conflict.status } },
    h('header', {}, h('h3', {}, open), badge),
    h(
      'p',
      { class: 'meta' },
      `namespace ${conflict.namespace} · detected ${when(conflict.createdAt)}`,
      conflict.deviceId ? ` · device ${conflict.deviceId}` : '',
      conflict.user ? ` · user ${conflict.user}` : '',
      ` · operation ${conflict.opId}`,
    ),
    sides(conflict),
    actions,
    editor,
    error,
    result,
  );
  return article;
}

export const conflicts: Page = (root, context) => {
  const { api } = context;
  const status = h('p', { class: 'status' });
  const pendingList = h('div', { class: 'cards', data: { list: 'pending' } });
  const resolvedList = h('div', { class: 'cards', data: { list: 'resolved' } });
  /** Cards resolved on this page: kept in place with their outcome. */
  const resolvedHere = new Map<string, HTMLElement>();
  /** Cards on show, by conflict id, so a refresh keeps an open editor as it is. */
  const shown = new Map<string, HTMLElement>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const load = async () => {
    clearTimeout(timer);
    try {
      const [pending, resolved] = await Promise.all([
        api.conflicts('pending', PENDING_SHOWN),
        api.conflicts('resolved', RESOLVED_SHOWN),
      ]);
      if (stopped) return;
      status.textContent =
        pending.conflicts.length === 0 ? 'No conflict is waiting for a decision.' : `${pending.conflicts.length} pending`;
      status.classList.remove('error');
      const pendingCards = pending.conflicts.map((conflict) => {
        const existing = shown.get(conflict.id);
        if (existing) return existing;
        const made: HTMLElement = card(conflict, context, () => {
          resolvedHere.set(conflict.id, made);
          void load();
        });
        shown.set(conflict.id, made);
        return made;
      });
      const ids = new Set(pending.conflicts.map((conflict) => conflict.id));
      for (const id of shown.keys()) if (!ids.has(id)) shown.delete(id);
      replace(pendingList, ...resolvedHere.values(), ...pendingCards);
      const recent = resolved.conflicts
        .filter((conflict) => !resolvedHere.has(conflict.id))
        .sort((a, b) => (b.resolvedAt ?? '').localeCompare(a.resolvedAt ?? ''))
        .map((conflict) => card(conflict, context, () => {}));
      replace(resolvedList, ...(recent.length ? recent : [h('p', { class: 'muted' }, 'None yet.')]));
    } catch (error) {
      if (stopped) return;
      status.textContent = `Cannot list the conflicts: ${describe(error)}`;
      status.classList.add('error');
    }
    if (!stopped) timer = setTimeout(() => void load(), REFRESH_MS);
  };

  replace(
    root,
    h('h2', {}, 'Conflicts'),
    h(
      'p',
      { class: 'muted' },
      'Conflicts left pending (strategy manual), oldest first. Each conflicting field shows its common ' +
        'ancestor (base), the server’s value and the client’s; the resolution becomes a new version ' +
        'that every subscribed device receives.',
    ),
    h('div', { class: 'toolbar' }, h('button', { type: 'button', on: { click: () => void load() } }, 'Refresh'), status),
    pendingList,
    h('h2', {}, 'Recently resolved'),
    resolvedList,
  );
  void load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
};
