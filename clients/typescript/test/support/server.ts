// Starts the real `sync-server` binary for tests (vitest in Node and the
// Playwright global setup): an ephemeral port on 127.0.0.1, a fresh data
// directory, graceful stop, hard kill and restart on the same port and
// data; plus small HTTP helpers to read the server's documents and metrics.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root directory (this file is clients/typescript/test/support). */
export const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** The directory of the TypeScript package. */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
const OUTPUT_MAX_CHARS = 1_000_000;

export interface StartOptions {
  /** Extra environment variables for the server; they override the defaults. */
  env?: Record<string, string>;
  /** TOML text, written to a file and passed with `--config`. */
  config?: string;
  /** Allow browser calls from any origin (`[cors] allowed_origins = ["*"]`). */
  cors?: boolean;
  /** Use this data directory instead of a fresh temporary one (it is kept). */
  dataDir?: string;
}

export interface RunningServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `ws://127.0.0.1:PORT/ws` */
  readonly wsUrl: string;
  readonly port: number;
  readonly dataDir: string;
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the process to exit. */
  kill(): Promise<void>;
  /** Stops the server if it runs, then starts it again on the same port and data. */
  restart(): Promise<void>;
  /** Everything the server printed so far (every run), stdout and stderr. */
  output(): string;
}

/** The server binary: `SYNC_SERVER_BIN`, else the workspace's debug build. */
export function serverBinary(): string {
  const binary =
    process.env.SYNC_SERVER_BIN ?? path.join(repoRoot, 'target', 'debug', 'sync-server');
  if (!existsSync(binary)) {
    throw new Error(
      `the sync-server binary is missing at ${binary}: run ` +
        '`cargo build -p sync-service --bin sync-server` at the repository root ' +
        '(or set SYNC_SERVER_BIN to the binary)',
    );
  }
  return binary;
}

/** A port that was free a moment ago: bind port 0, read it, close. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      if (address === null || typeof address === 'string') {
        probe.close();
        reject(new Error('could not read the probe port'));
        return;
      }
      const { port } = address;
      probe.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

// Every process started here, killed when this process exits, and every
// temporary directory, removed then.
const liveProcesses = new Set<ChildProcess>();
const temporaryDirs = new Set<string>();
let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => {
    for (const child of liveProcesses) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
    for (const dir of temporaryDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // Best effort: the directory is in the system's temporary space.
      }
    }
  });
  // A signal would end the process without its `exit` event: turn it into
  // an exit, unless someone else handles the signal.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      if (process.listenerCount(signal) === 0) {
        process.exit(128 + (os.constants.signals[signal] ?? 1));
      }
    });
  }
}

function serverEnv(port: number, dataDir: string, extra: Record<string, string>) {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Settings of the caller's own server must not leak into a test server.
    if (value !== undefined && !key.startsWith('SYNC_')) env[key] = value;
  }
  return {
    ...env,
    SYNC_LISTEN: `127.0.0.1:${port}`,
    SYNC_DATA_DIR: dataDir,
    SYNC_DURABILITY: 'os',
    RUST_LOG: 'warn',
    ...extra,
  };
}

function configText(options: StartOptions): string | undefined {
  if (!options.cors) return options.config;
  if (options.config !== undefined && /^\s*\[cors\]/m.test(options.config)) {
    throw new Error('startServer: give the [cors] settings in `config` or `cors: true`, not both');
  }
  const cors = '[cors]\nallowed_origins = ["*"]\n';
  return options.config === undefined ? cors : `${options.config}\n${cors}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts `sync-server` and resolves once `GET /ready` answers 200. */
export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  installCleanup();
  const binary = serverBinary();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'sync-server-test-'));
  temporaryDirs.add(workDir);
  const dataDir = options.dataDir ?? path.join(workDir, 'data');
  const args: string[] = [];
  const config = configText(options);
  if (config !== undefined) {
    const configPath = path.join(workDir, 'server.toml');
    writeFileSync(configPath, config);
    args.push('--config', configPath);
  }

  let output = '';
  const record = (chunk: Buffer | string) => {
    output += chunk.toString();
    if (output.length > OUTPUT_MAX_CHARS) output = output.slice(-OUTPUT_MAX_CHARS);
  };

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let port = 0;

  const launch = async (): Promise<void> => {
    const env = serverEnv(port, dataDir, options.env ?? {});
    const started = spawn(binary, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    liveProcesses.add(started);
    started.stdout?.on('data', record);
    started.stderr?.on('data', record);
    let hasExited = false;
    exited = new Promise<void>((resolve) => {
      started.once('exit', (code, signal) => {
        hasExited = true;
        liveProcesses.delete(started);
        record(`[sync-server exited: ${signal ?? `code ${code}`}]\n`);
        resolve();
      });
      started.once('error', (error) => {
        hasExited = true;
        liveProcesses.delete(started);
        record(`[sync-server could not start: ${error.message}]\n`);
        resolve();
      });
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (hasExited) {
        throw new ServerStartError(`sync-server exited before it was ready:\n${output}`, output);
      }
      try {
        const response = await fetch(`http://127.0.0.1:${port}/ready`, {
          signal: AbortSignal.timeout(2_000),
        });
        await response.arrayBuffer();
        if (response.status === 200) return;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        started.kill('SIGKILL');
        await exited;
        throw new ServerStartError(
          `sync-server was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${output}`,
          output,
        );
      }
      await sleep(50);
    }
  };

  const signal = async (name: 'SIGTERM' | 'SIGKILL'): Promise<void> => {
    const running = child;
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) {
      await exited;
      return;
    }
    running.kill(name);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      running.kill('SIGKILL');
      await exited;
      throw new Error(
        `sync-server did not exit within ${STOP_TIMEOUT_MS / 1000} s of ${name}:\n${output}`,
      );
    }
  };

  // The port was free when probed; if another process took it before the
  // server bound it, try another one.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      const taken = /address already in use/i.test(output);
      if (!(error instanceof ServerStartError) || !taken || attempt >= 3) throw error;
      record(`[port ${port} was taken; trying another]\n`);
    }
  }

  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    port,
    dataDir,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    restart: async () => {
      await signal('SIGTERM');
      record('[sync-server restarting]\n');
      await launch();
    },
    output: () => output,
  };
}

/** The server failed to start; `output` is what it printed. */
export class ServerStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(message);
    this.name = 'ServerStartError';
  }
}

/** A document as the server's HTTP API returns it. */
export interface ServerDocument<T = Record<string, unknown>> {
  id: string;
  namespace: string;
  collection: string;
  data: T;
  version: number;
  seq: number;
  updatedAt: string;
  deleted: boolean;
}

/** A response: the status and the body (parsed when it is JSON). */
export interface ApiResponse<T = unknown> {
  status: number;
  ok: boolean;
  headers: Headers;
  body: T;
}

export interface CallOptions {
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  headers?: Record<string, string>;
}

/** Plain HTTP JSON calls to the server at `url`, with an optional default token. */
export function api(url: string, defaults: CallOptions = {}) {
  const base = url.replace(/\/+$/, '');

  async function call<T>(
    method: string,
    route: string,
    body: unknown,
    options: CallOptions,
  ): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...defaults.headers,
      ...options.headers,
    };
    const token = options.token ?? defaults.token;
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const init: RequestInit = { method, headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(`${base}${route}`, init);
    const text = await response.text();
    const isJson = (response.headers.get('content-type') ?? '').includes('json');
    let parsed: unknown = text;
    if (isJson && text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        // Leave the text: the caller's assertion will show it.
      }
    }
    return { status: response.status, ok: response.ok, headers: response.headers, body: parsed as T };
  }

  function expectOk<T>(what: string, response: ApiResponse<T>): T {
    if (!response.ok) {
      throw new Error(`${what} answered ${response.status}: ${JSON.stringify(response.body)}`);
    }
    return response.body;
  }

  const segments = (...parts: string[]) => parts.map(encodeURIComponent).join('/');

  return {
    get: <T = unknown>(route: string, options: CallOptions = {}) =>
      call<T>('GET', route, undefined, options),
    post: <T = unknown>(route: string, body?: unknown, options: CallOptions = {}) =>
      call<T>('POST', route, body, options),
    delete: <T = unknown>(route: string, options: CallOptions = {}) =>
      call<T>('DELETE', route, undefined, options),

    /** One document, `undefined` when the server answers 404. */
    async document<T = Record<string, unknown>>(
      namespace: string,
      collection: string,
      id: string,
      options: CallOptions = {},
    ): Promise<ServerDocument<T> | undefined> {
      const route = `/v1/ns/${segments(namespace, collection, id)}`;
      const response = await call<ServerDocument<T>>('GET', route, undefined, options);
      if (response.status === 404) return undefined;
      return expectOk(`GET ${route}`, response);
    },

    /** Every document of a collection, following `next` page by page. */
    async documents<T = Record<string, unknown>>(
      namespace: string,
      collection: string,
      options: CallOptions & { limit?: number } = {},
    ): Promise<ServerDocument<T>[]> {
      const all: ServerDocument<T>[] = [];
      let after: string | null = null;
      do {
        const query = new URLSearchParams({ limit: String(options.limit ?? 500) });
        if (after !== null) query.set('after', after);
        const route = `/v1/ns/${segments(namespace, collection)}?${query}`;
        const page = expectOk(
          `GET ${route}`,
          await call<{ documents: ServerDocument<T>[]; next: string | null }>(
            'GET',
            route,
            undefined,
            options,
          ),
        );
        all.push(...page.documents);
        after = page.next;
      } while (after !== null);
      return all;
    },

    /** `POST /v1/sync` with these operations; throws unless it answers 2xx. */
    async sync<T = Record<string, unknown>>(
      request: Record<string, unknown>,
      options: CallOptions = {},
    ): Promise<T> {
      return expectOk('POST /v1/sync', await call<T>('POST', '/v1/sync', request, options));
    },
  };
}

/**
 * Every sample of `GET /metrics`, keyed by its name with labels as printed
 * (`sync_connections`, `sync_operations_total{status="success"}`).
 */
export async function metrics(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url.replace(/\/+$/, '')}/metrics`);
  const text = await response.text();
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}: ${text}`);
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    if (cut <= 0) continue;
    samples.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return samples;
}

/** The value of one sample of `GET /metrics` (a gauge such as `sync_connections`). */
export async function metric(url: string, name: string): Promise<number> {
  const value = (await metrics(url)).get(name);
  if (value === undefined) throw new Error(`GET /metrics has no sample named ${name}`);
  return value;
}
