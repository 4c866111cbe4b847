// A small line chart in SVG: the values of the last minutes, scaled to
// the largest one, with a faint area under the line. Drawn with DOM calls
// only.

import { svg } from '../shared/dom.js';

const WIDTH = 240;
const HEIGHT = 56;

/** The chart of `points` (time in ms, value) over the window ending at `now`. */
export function lineChart(points: { at: number; value: number }[], windowMs: number, now: number): SVGElement {
  const max = Math.max(1, ...points.map((p) => p.value));
  const x = (at: number) => (WIDTH * (at - (now - windowMs))) / windowMs;
  const y = (value: number) => HEIGHT - 2 - ((HEIGHT - 4) * value) / max;
  const line = points.map((p) => `${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
  const first = points[0];
  const last = points[points.length - 1];
  const area =
    first && last ? `${x(first.at).toFixed(1)},${HEIGHT} ${line} ${x(last.at).toFixed(1)},${HEIGHT}` : '';
  return svg(
    'svg',
    { class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: 'none', role: 'img' },
    svg('line', { class: 'chart-base', x1: 0, y1: HEIGHT - 1, x2: WIDTH, y2: HEIGHT - 1 }),
    svg('polygon', { class: 'chart-area', points: area }),
    svg('polyline', { class: 'chart-line', points: line, 'data-points': points.length }),
  );
}
