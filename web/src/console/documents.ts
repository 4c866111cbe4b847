// The document browser: pick a namespace and a collection (offered from
// `GET /v1/collections`, or typed), filter with `where` conditions, open a
// document to see its JSON and its history (each version's delta), look at
// any kept version and restore one as a new version.

import { h, json, jsonFitted, preview, replace, when } from '../shared/dom.js';
import { describe, type ServerDocument, type VersionEntry } from './api.js';
import type { Context, Page } from './view.js';

/** `done:false, owner:ana` as the API's `where` conditions. */
function conditions(text: string): string[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

export const documents: Page = (root, context) => {
  const { api, params, remember } = context;
  const namespaces = h('datalist', { id: 'namespaces' });
  const collections = h('datalist', { id: 'collections' });
  const namespace = h('input', {
    type: 'text',
    name: 'namespace',
    value: params.get('ns') ?? 'default',
    autocomplete: 'off',
    spellcheck: false,
    required: true,
    attrs: { list: 'namespaces' },
  });
  const collection = h('input', {
    type: 'text',
    name: 'collection',
    value: params.get('c') ?? '',
    autocomplete: 'off',
    spellcheck: false,
    required: true,
    placeholder: 'collection',
    attrs: { list: 'collections' },
  });
  const where = h('input', {
    type: 'text',
    name: 'where',
    value: params.get('where') ?? '',
    autocomplete: 'off',
    spellcheck: false,
    placeholder: 'done:false, owner:ana',
  });
  const status = h('p', { class: 'status' });
  const listBody = h('tbody');
  const more = h('button', { type: 'button' }, 'More');
  more.hidden = true;
  const detail = h('div', { class: 'detail' });
  let known: { namespace: string; collection: string }[] = [];
  let next: string | null = null;
  let selected = params.get('id');
  let stopped = false;

  const offerCollections = () => {
    const names = [...new Set(known.map((entry) => entry.namespace))];
    replace(namespaces, ...names.map((name) => h('option', { value: name })));
    const inNamespace = known.filter((entry) => entry.namespace === namespace.value.trim());
    replace(collections, ...inNamespace.map((entry) => h('option', { value: entry.collection })));
  };

  const state = () => {
    const kept: Record<string, string> = { ns: namespace.value.trim(), c: collection.value.trim() };
    if (where.value.trim()) kept['where'] = where.value.trim();
    if (selected) kept['id'] = selected;
    return kept;
  };

  const row = (document: ServerDocument) =>
    h(
      'tr',
      {
        class: document.id === selected ? 'selected' : '',
        data: { id: document.id },
        on: { click: () => void open(document.id) },
      },
      h('td', { class: 'mono' }, h('a', { href: '#', on: { click: (event) => event.preventDefault() } }, document.id)),
      h('td', { class: 'num' }, document.version),
      h('td', {}, when(document.updatedAt)),
      h('td', { class: 'preview' }, document.deleted ? '(deleted)' : preview(document.data, 100)),
    );

  const list = async (append: boolean) => {
    const ns = namespace.value.trim();
    const name = collection.value.trim();
    if (!ns || !name) return;
    try {
      const page = await api.documents(ns, name, conditions(where.value), append ? next : null);
      if (stopped) return;
      next = page.next;
      more.hidden = next === null;
      const rows = page.documents.map(row);
      if (append) listBody.append(...rows);
      else replace(listBody, ...rows);
      status.textContent =
        listBody.childElementCount === 0 ? 'No document matches.' : `${listBody.childElementCount} shown`;
      status.classList.remove('error');
    } catch (error) {
      if (stopped) return;
      status.textContent = `Cannot list the documents: ${describe(error)}`;
      status.classList.add('error');
    }
  };

  const open = async (id: string, message?: string) => {
    selected = id;
    remember(state());
    for (const tr of listBody.querySelectorAll('tr')) tr.classList.toggle('selected', tr.dataset['id'] === id);
    const ns = namespace.value.trim();
    const name = collection.value.trim();
    try {
      const [document, history] = await Promise.all([api.document(ns, name, id), api.history(ns, name, id)]);
      if (stopped || selected !== id) return;
      replace(detail, documentPanel(context, document, history.versions, message, (said) => void refresh(id, said)));
    } catch (error) {
      if (stopped) return;
      replace(detail, h('p', { class: 'status error' }, `Cannot read ${name}/${id}: ${describe(error)}`));
    }
  };

  const refresh = async (id: string, message: string) => {
    await list(false);
    await open(id, message);
  };

  more.addEventListener('click', () => void list(true));
  namespace.addEventListener('change', offerCollections);

  replace(
    root,
    h('h2', {}, 'Documents'),
    h(
      'form',
      {
        class: 'toolbar',
        on: {
          submit: (event) => {
            event.preventDefault();
            selected = null;
            replace(detail);
            remember(state());
            void list(false);
          },
        },
      },
      h('label', {}, 'Namespace ', namespace),
      h('label', {}, 'Collection ', collection),
      h('label', { class: 'grow' }, 'Where ', where),
      h('button', { type: 'submit', class: 'primary' }, 'List'),
      namespaces,
      collections,
    ),
    status,
    h(
      'div',
      { class: 'split' },
      h(
        'div',
        { class: 'list' },
        h(
          'table',
          { class: 'grid clickable' },
          h('thead', {}, h('tr', {}, h('th', {}, 'id'), h('th', {}, 'version'), h('th', {}, 'updated'), h('th', {}, 'data'))),
          listBody,
        ),
        more,
      ),
      detail,
    ),
  );

  void api
    .collections()
    .then((answer) => {
      known = answer.collections;
      offerCollections();
      if (!collection.value && known.length > 0) {
        const first = known.find((entry) => entry.namespace === namespace.value.trim()) ?? known[0]!;
        namespace.value = first.namespace;
        collection.value = first.collection;
        offerCollections();
      }
      return list(false);
    })
    .catch(() => list(false))
    .then(() => (selected ? open(selected) : undefined));
  return () => {
    stopped = true;
  };
};

/** One document: its JSON and its history, with a look at each version and its restore. */
function documentPanel(
  { api }: Context,
  document: ServerDocument,
  versions: VersionEntry[],
  message: string | undefined,
  changed: (message: string) => void,
): HTMLElement {
  const { namespace, collection, id } = document;
  const note = h('p', { class: 'status', attrs: { role: 'status' } }, message ?? '');
  const versionView = h('div', { class: 'version-view' });

  const show = async (version: number) => {
    try {
      const at = await api.version(namespace, collection, id, version);
      replace(
        versionView,
        h('h4', {}, `Version ${version}`, at.deleted ? ' (deleted)' : ''),
        h('pre', { class: 'document', data: { version: String(version) } }, json(at.data)),
      );
    } catch (error) {
      replace(versionView, h('p', { class: 'status error' }, `Cannot read version ${version}: ${describe(error)}`));
    }
  };

  const restore = async (version: number, cell: HTMLElement) => {
    for (const button of cell.querySelectorAll('button')) button.disabled = true;
    try {
      const restored = await api.restore(namespace, collection, id, version);
      changed(`Restored version ${version} as version ${restored.version}.`);
    } catch (error) {
      note.textContent = `Not restored: ${describe(error)}`;
      note.classList.add('error');
      for (const button of cell.querySelectorAll('button')) button.disabled = false;
    }
  };

  const actions = (entry: VersionEntry) => {
    const cell = h('td', { class: 'row-actions' });
    const initial = () =>
      replace(
        cell,
        h('button', { type: 'button', on: { click: () => void show(entry.version) } }, 'Show'),
        entry.version === document.version
          ? null
          : h('button', { type: 'button', data: { restore: String(entry.version) }, on: { click: confirm } }, 'Restore…'),
      );
    const confirm = () =>
      replace(
        cell,
        h('span', {}, `Restore version ${entry.version} as a new version? `),
        h(
          'button',
          { type: 'button', class: 'primary', data: { confirm: String(entry.version) }, on: { click: () => void restore(entry.version, cell) } },
          `Restore version ${entry.version}`,
        ),
        h('button', { type: 'button', on: { click: initial } }, 'Cancel'),
      );
    initial();
    return cell;
  };

  return h(
    'section',
    { class: 'panel', data: { document: id } },
    h('h3', {}, `${collection}/${id}`),
    h(
      'p',
      { class: 'meta' },
      `namespace ${namespace} · version ${document.version} · seq ${document.seq} · updated ${when(document.updatedAt)}`,
      document.deleted ? ' · deleted' : '',
    ),
    note,
    h('pre', { class: 'document', data: { current: 'true' } }, json(document.data)),
    h('h3', {}, 'History'),
    h(
      'table',
      { class: 'grid history' },
      h(
        'thead',
        {},
        h('tr', {}, ...['version', 'change', 'when', 'by', 'delta', ''].map((title) => h('th', {}, title))),
      ),
      h(
        'tbody',
        {},
        ...[...versions].reverse().map((entry) =>
          h(
            'tr',
            { data: { version: String(entry.version) } },
            h('td', { class: 'num' }, entry.version),
            h('td', {}, entry.op),
            h('td', {}, when(entry.timestamp)),
            h(
              'td',
              { class: 'small' },
              [entry.user, entry.deviceId].filter(Boolean).join(' · ') || '—',
              h('br'),
              h('span', { class: 'muted mono' }, entry.opId),
            ),
            h('td', {}, h('pre', { class: 'delta' }, jsonFitted(entry.delta, 50))),
            actions(entry),
          ),
        ),
      ),
    ),
    versionView,
  );
}
