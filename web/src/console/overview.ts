// The overview: live figures of this server node (connections,
// subscriptions, operations and deliveries per second with their charts
// over the last minutes, the log head, documents, devices online, pending
// conflicts) and the totals behind them.

import { h, replace } from '../shared/dom.js';
import { lineChart } from './chart.js';
import { PENDING_MAX, type Sample } from './sampler.js';
import type { Page } from './view.js';

/** The charts' time span: the samples kept, at least a minute, at most five. */
const WINDOW_MIN_MS = 60_000;
const WINDOW_MAX_MS = 5 * 60_000;

function figure(name: string, label: string, value: string, chart?: SVGElement, note?: string): HTMLElement {
  return h(
    'section',
    { class: 'figure', data: { figure: name } },
    h('h3', {}, label),
    h('p', { class: 'value' }, value),
    chart,
    note ? h('p', { class: 'note' }, note) : null,
  );
}

function rate(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

function counts(title: string, values: Record<string, number>): HTMLElement {
  const entries = Object.entries(values);
  return h(
    'section',
    { class: 'panel' },
    h('h3', {}, title),
    entries.length === 0
      ? h('p', { class: 'muted' }, 'none yet')
      : h(
          'table',
          { class: 'compact' },
          h('tbody', {}, ...entries.map(([key, n]) => h('tr', {}, h('th', {}, key), h('td', { class: 'num' }, n)))),
        ),
  );
}

export const overview: Page = (root, { sampler, go }) => {
  const status = h('p', { class: 'status' });
  const figures = h('div', { class: 'figures' });
  const details = h('div', { class: 'columns' });
  replace(
    root,
    h('h2', {}, 'Overview'),
    h('p', { class: 'muted' }, 'Live figures of this server node, read every 2 seconds; the charts show up to the last 5 minutes.'),
    status,
    figures,
    details,
  );

  const draw = () => {
    const latest: Sample | undefined = sampler.latest;
    status.textContent = sampler.failure ? `Cannot read the figures: ${sampler.failure}` : '';
    status.classList.toggle('error', sampler.failure !== null);
    if (!latest) {
      replace(figures, h('p', { class: 'muted' }, 'Reading the server…'));
      return;
    }
    const now = Date.now();
    const oldest = sampler.samples[0]?.at ?? now;
    const windowMs = Math.min(WINDOW_MAX_MS, Math.max(WINDOW_MIN_MS, now - oldest));
    const series = (pick: (s: Sample) => number | null) =>
      lineChart(
        sampler.samples.flatMap((s) => {
          const value = pick(s);
          return value === null ? [] : [{ at: s.at, value }];
        }),
        windowMs,
        now,
      );
    const { stats } = latest;
    const pending =
      latest.pendingConflicts >= PENDING_MAX ? `${PENDING_MAX}+` : String(latest.pendingConflicts);
    const conflictFigure = figure('conflicts', 'Conflicts pending', pending, series((s) => s.pendingConflicts));
    conflictFigure.classList.add('link');
    conflictFigure.addEventListener('click', () => go('conflicts'));
    replace(
      figures,
      figure('connections', 'Connections', String(stats.activeConnections), series((s) => s.stats.activeConnections)),
      figure(
        'subscriptions',
        'Subscriptions',
        stats.activeSubscriptions === undefined ? '—' : String(stats.activeSubscriptions),
        series((s) => s.stats.activeSubscriptions ?? null),
      ),
      figure('operations', 'Operations / s', rate(latest.operationsPerSec), series((s) => s.operationsPerSec)),
      figure(
        'deliveries',
        'Deliveries / s',
        latest.deliveriesPerSec === null ? '—' : rate(latest.deliveriesPerSec),
        series((s) => s.deliveriesPerSec),
        'changes pushed to WebSocket subscribers',
      ),
      figure('head', 'Log head', String(stats.head), undefined, 'seq of the last durable change'),
      figure('documents', 'Documents', String(stats.documents)),
      figure('devices', 'Devices online', String(stats.devicesOnline)),
      conflictFigure,
    );
    replace(
      details,
      h(
        'section',
        { class: 'panel' },
        h('h3', {}, 'Sync requests'),
        h(
          'table',
          { class: 'compact' },
          h(
            'tbody',
            {},
            h('tr', {}, h('th', {}, 'handled'), h('td', { class: 'num' }, stats.totalSyncs)),
            h('tr', {}, h('th', {}, 'success rate'), h('td', { class: 'num' }, `${(stats.successRate * 100).toFixed(1)} %`)),
            h('tr', {}, h('th', {}, 'mean duration'), h('td', { class: 'num' }, `${stats.averageDurationMs.toFixed(2)} ms`)),
            h('tr', {}, h('th', {}, 'p99 duration'), h('td', { class: 'num' }, `${stats.p99DurationMs.toFixed(2)} ms`)),
          ),
        ),
      ),
      counts('Operations by status', stats.operations),
      counts('Conflicts by strategy', stats.conflictsByStrategy),
    );
  };
  draw();
  return sampler.listen(draw);
};
