// One WebSocket connection to the server: opens it (the token rides in
// `?token=`, since browsers cannot set headers on a WebSocket), sends
// messages as JSON text frames and hands every well-formed server message
// to the owner. A malformed frame is logged and skipped, never fatal.

import { isObject, type JsonObject } from '../core/json.js';

/** The part of the WHATWG WebSocket the client uses (the browser's, Node 22's, or the `ws` package's). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor. */
export type WebSocketConstructor = new (url: string) => SocketLike;

/** A server message: a JSON object with a string `type`. */
export type ServerMessage = JsonObject & { type: string };

/** What the owner of a connection hears. */
export interface ConnectionHandlers {
  message(message: ServerMessage): void;
  closed(code: number, reason: string): void;
  malformed?(frame: unknown): void;
}

const OPEN = 1;

/** An open connection. */
export class Connection {
  private closedByUs = false;
  private constructor(private readonly socket: SocketLike) {}

  /** Opens a connection to `url`; rejects when it does not open within `timeoutMs`. */
  static open(url: string, Socket: WebSocketConstructor, handlers: ConnectionHandlers, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      let socket: SocketLike;
      try {
        socket = new Socket(url);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      const connection = new Connection(socket);
      let opened = false;
      const timer = setTimeout(() => {
        if (!opened) {
          socket.close();
          reject(new Error('the WebSocket did not open in time'));
        }
      }, timeoutMs);
      socket.onopen = () => {
        opened = true;
        clearTimeout(timer);
        resolve(connection);
      };
      socket.onerror = () => {
        // A close event follows and says the rest.
      };
      socket.onclose = (event) => {
        clearTimeout(timer);
        if (!opened) {
          reject(new Error(`the WebSocket closed before it opened (${event.code})`));
          return;
        }
        handlers.closed(event.code, event.reason);
      };
      socket.onmessage = (event) => {
        const message = parse(event.data);
        if (message) handlers.message(message);
        else handlers.malformed?.(event.data);
      };
    });
  }

  /** Whether the socket is open. */
  get open(): boolean {
    return !this.closedByUs && this.socket.readyState === OPEN;
  }

  /** Sends one message; `false` when the socket is no longer open. */
  send(message: object): boolean {
    if (!this.open) return false;
    try {
      this.socket.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the connection (1000, or `code`). */
  close(code = 1000, reason = ''): void {
    this.closedByUs = true;
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closing.
    }
  }
}

function parse(data: unknown): ServerMessage | undefined {
  if (typeof data !== 'string') return undefined;
  try {
    const value: unknown = JSON.parse(data);
    if (isObject(value) && typeof value['type'] === 'string') return value as ServerMessage;
  } catch {
    // Not JSON.
  }
  return undefined;
}

/** The WebSocket URL of a server: `websocketUrl`, else `serverUrl` with ws(s) and `/ws`; the token as `?token=`. */
export function websocketUrl(serverUrl: string, explicit: string | undefined, token: string | undefined): string {
  const url = new URL(explicit ?? serverUrl);
  if (!explicit) {
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    url.pathname = `${url.pathname.replace(/\/$/, '')}/ws`;
  }
  if (token) url.searchParams.set('token', token);
  return url.toString();
}
