// Devices: presence, last seen and last sync, lag behind the log head,
// pushes not yet acknowledged, operations and conflicts, read every three
// seconds. The API lists one user's devices: the token's own, or, for an
// admin, the user named in the field.

import { h, replace, when } from '../shared/dom.js';
import { describe, type DeviceStats } from './api.js';
import type { Page } from './view.js';

const REFRESH_MS = 3_000;

function row(device: DeviceStats): HTMLElement {
  const operations = Object.entries(device.operations)
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  return h(
    'tr',
    { data: { device: device.deviceId } },
    h('td', {}, h('span', { class: device.online ? 'dot online' : 'dot' }), device.online ? 'online' : 'offline'),
    h('td', { class: 'mono' }, device.deviceId),
    h('td', {}, device.name || '—'),
    h('td', {}, when(device.lastSeen), device.active ? '' : ' (inactive)'),
    h('td', {}, when(device.lastSync)),
    h('td', { class: 'num' }, device.lag === null ? '—' : device.lag),
    h('td', { class: 'num' }, device.unacknowledgedPushes),
    h('td', {}, operations || '—'),
    h('td', { class: 'num' }, device.conflicts),
  );
}

export const devices: Page = (root, { api, params, remember }) => {
  const user = h('input', {
    type: 'text',
    value: params.get('user') ?? '',
    placeholder: 'the token’s own user',
    autocomplete: 'off',
    spellcheck: false,
  });
  const status = h('p', { class: 'status' });
  const body = h('tbody');
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;

  const load = async () => {
    clearTimeout(timer);
    try {
      const { devices: list } = await api.devices(user.value.trim());
      if (stopped) return;
      status.textContent = list.length === 0 ? 'No devices registered for this user.' : '';
      status.classList.remove('error');
      replace(body, ...list.map(row));
    } catch (error) {
      if (stopped) return;
      status.textContent = `Cannot list the devices: ${describe(error)}`;
      status.classList.add('error');
    }
    if (!stopped) timer = setTimeout(() => void load(), REFRESH_MS);
  };

  replace(
    root,
    h('h2', {}, 'Devices'),
    h(
      'form',
      {
        class: 'toolbar',
        on: {
          submit: (event) => {
            event.preventDefault();
            remember(user.value.trim() ? { user: user.value.trim() } : {});
            void load();
          },
        },
      },
      h('label', {}, 'User ', user),
      h('button', { type: 'submit' }, 'Show'),
    ),
    h(
      'p',
      { class: 'muted' },
      'Lag: log positions behind the head (known once the device synced through this node). ' +
        'Unacknowledged: changes pushed to it and still waiting in its send queues.',
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
          ...['', 'device', 'name', 'last seen', 'last sync', 'lag', 'unacknowledged', 'operations', 'conflicts'].map(
            (title) => h('th', {}, title),
          ),
        ),
      ),
      body,
    ),
  );
  void load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
};
