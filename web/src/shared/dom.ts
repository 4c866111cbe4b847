// Building the DOM without markup: every value shown goes in as a text node
// (or `textContent`), never through `innerHTML`, so a document whose fields
// hold HTML or script shows it as text. Events are bound with
// `addEventListener`, styles come from the style sheet: the pages run under
// a Content-Security-Policy with no inline script or style.

/** What may stand as a child: nodes, and text (strings and numbers). Nothing else is drawn. */
export type Child = Node | string | number | null | undefined | false;

/** The properties `h` sets. */
export interface Props {
  class?: string;
  id?: string;
  title?: string;
  type?: string;
  value?: string;
  name?: string;
  placeholder?: string;
  href?: string;
  target?: string;
  rel?: string;
  checked?: boolean;
  disabled?: boolean;
  required?: boolean;
  autocomplete?: string;
  spellcheck?: boolean;
  rows?: number;
  htmlFor?: string;
  /** `data-*` attributes, by their camelCase name. */
  data?: Record<string, string>;
  /** Other attributes (ARIA, `list`, `role`); never `style` or `on*`. */
  attrs?: Record<string, string>;
  /** Event listeners. */
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

/** An element with its properties and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  const { class: className, data, attrs, on, ...rest } = props;
  if (className !== undefined) element.className = className;
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) (element as unknown as Record<string, unknown>)[key] = value;
  }
  if (data) Object.assign(element.dataset, data);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (name === 'style' || name.toLowerCase().startsWith('on')) {
        throw new Error(`attribute ${name} is not set through h()`);
      }
      element.setAttribute(name, value);
    }
  }
  if (on) {
    for (const [type, listener] of Object.entries(on)) {
      element.addEventListener(type, listener as EventListener);
    }
  }
  append(element, children);
  return element;
}

/** Appends `children` to `parent`, strings and numbers as text nodes. */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `parent`. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, children);
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes (no `style`, no `on*`). */
export function svg(tag: string, attrs: Record<string, string | number>, ...children: Element[]): SVGElement {
  const element = document.createElementNS(SVG, tag) as SVGElement;
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

/** A value as indented JSON (`undefined` as an em dash). */
export function json(value: unknown): string {
  return value === undefined ? '—' : JSON.stringify(value, null, 2);
}

/** A value as JSON: on one line when that is at most `width` characters, else indented. */
export function jsonFitted(value: unknown, width = 60): string {
  if (value === undefined) return '—';
  const line = JSON.stringify(value);
  return line.length <= width ? line : JSON.stringify(value, null, 2);
}

/** A value as one line of JSON, cut at `max` characters. */
export function preview(value: unknown, max = 120): string {
  const text = value === undefined ? '—' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A time in the reader's locale: an ISO-8601 time, or the wall-clock part of
 * an HLC (`2023-12-01T10:30:00.000Z-0000002a-00000000000004d2`); the input
 * as it is when it is neither.
 */
export function when(value: string | null | undefined): string {
  if (!value) return '—';
  const hlc = /^(.*Z)-[0-9a-f]{8}-[0-9a-f]{16}$/.exec(value);
  const time = Date.parse(hlc?.[1] ?? value);
  return Number.isNaN(time) ? value : new Date(time).toLocaleString();
}
