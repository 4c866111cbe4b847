// The Rust SDK's todo example (driven on stdin) and a TypeScript client edit the same todos concurrently and end with the server's documents.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { repoRoot, startServer, type RunningServer } from '../support/server.js';
import { closeClients, expectWholeHistory, history, openClient, serverDocs, waitConverged, waitFor, type DocsById } from './helpers.js';

const BUILD = 'cargo build -p sync-client --example todo';

/** The Rust example's binary: `SYNC_TODO_BIN`, else the workspace's debug build. */
function todoBinary(): string {
  const binary = process.env.SYNC_TODO_BIN ?? path.join(repoRoot, 'target', 'debug', 'examples', 'todo');
  if (!existsSync(binary)) {
    throw new Error(`the Rust todo example is missing at ${binary}: run \`${BUILD}\` at the repository root (or set SYNC_TODO_BIN to the binary)`);
  }
  return binary;
}

interface Todo {
  text: string;
  done: boolean;
}

/** The Rust todo example as a child process: commands on stdin, its screen on stdout. */
class RustTodo {
  private output = '';
  private exit: Promise<number | null>;
  readonly dataDir: string;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, dataDir: string) {
    this.dataDir = dataDir;
    child.stdout.on('data', (chunk: Buffer) => void (this.output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => void (this.output += chunk.toString()));
    this.exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(serverUrl: string): RustTodo {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sync-todo-'));
    const child = spawn(todoBinary(), ['--server', serverUrl, '--data-dir', dataDir], {
      env: { ...process.env, RUST_LOG: 'warn' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new RustTodo(child, dataDir);
  }

  /** Everything it printed. */
  printed(): string {
    return this.output;
  }

  send(...commands: string[]): void {
    this.child.stdin.write(commands.map((command) => `${command}\n`).join(''));
  }

  /** Its device id, from the first line it prints. */
  async deviceId(): Promise<string> {
    const match = await waitFor(() => /^device (\S+) syncing/m.exec(this.output), 10_000, 'the todo example to start');
    return match[1] as string;
  }

  /**
   * The list as it shows it now: asks for `list`, then for the impossible
   * `done 0` (answered `no such todo`), and reads the last whole list
   * printed before that answer.
   */
  async list(): Promise<Todo[]> {
    const marker = 'no such todo';
    const before = this.output.split(marker).length;
    this.send('list', 'done 0');
    await waitFor(() => this.output.split(marker).length > before, 10_000, 'the todo example to answer');
    const lines = this.output.slice(0, this.output.lastIndexOf(marker)).split('\n');
    const header = lines.lastIndexOf('---- todos ----');
    const todos: Todo[] = [];
    for (const line of lines.slice(header + 1)) {
      const item = /^\s*\d+\. \[( |x)\] (.*)$/.exec(line);
      if (!item) break;
      todos.push({ done: item[1] === 'x', text: item[2] as string });
    }
    return todos;
  }

  /** The 1-based position of the todo with this text in its list. */
  async position(text: string): Promise<number> {
    const index = (await this.list()).findIndex((todo) => todo.text === text);
    if (index < 0) throw new Error(`the todo example does not show ${JSON.stringify(text)}`);
    return index + 1;
  }

  async quit(): Promise<number | null> {
    this.send('quit');
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exit;
    clearTimeout(timer);
    return code;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exit;
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The server's documents as the example shows them: in creation order, text and done. */
function asShown(docs: DocsById): Todo[] {
  return Object.values(docs)
    .sort((a, b) => Number(a['createdAt']) - Number(b['createdAt']))
    .map((doc) => ({ text: String(doc['text']), done: doc['done'] === true }));
}

let server: RunningServer;
let rust: RustTodo | undefined;

beforeAll(async () => {
  server = await startServer();
});

afterEach(async () => {
  await closeClients();
  await rust?.kill();
  rust = undefined;
});

afterAll(async () => {
  await server?.stop();
});

describe('the Rust SDK and the TypeScript client', () => {
  it('edit the same todos concurrently and converge on the server\'s documents', async () => {
    rust = RustTodo.start(server.url);
    const ts = await openClient(server);
    const todos = ts.collection('todos');
    const rustDevice = await rust.deviceId();

    try {
      // Both add todos at once. The TypeScript ones are dated later, so the
      // example lists them after its own: rust 1-3, then ts 1-3.
      const later = Date.now() + 3_600_000;
      rust.send('add rust 1', 'add rust 2', 'add rust 3');
      const ids: Record<string, string> = {};
      for (let i = 1; i <= 3; i++) ids[`ts ${i}`] = await todos.save({ text: `ts ${i}`, done: false, createdAt: later + i });
      await waitFor(async () => (await rust!.list()).length === 6 && Object.keys(await serverDocs(server.url)).length === 6, 20_000, 'both to see six todos');
      const onServer = await waitConverged(server.url, [ts]);
      for (const [id, doc] of Object.entries(onServer)) ids[String(doc['text'])] ??= id;
      expect((await rust.list()).map((todo) => todo.text)).toEqual(['rust 1', 'rust 2', 'rust 3', 'ts 1', 'ts 2', 'ts 3']);

      // Concurrent edits, on the same documents from both sides:
      // - rust 1 and ts 1: the example ticks them done, TypeScript renames them;
      // - ts 2: the example removes it while TypeScript renames it;
      // - ts 3: TypeScript deletes it; each side adds one more.
      // (No edit here moves an item the example picks by position.)
      const [rust1, ts1, ts2] = [await rust.position('rust 1'), await rust.position('ts 1'), await rust.position('ts 2')];
      rust.send(`done ${rust1}`, `done ${ts1}`, `rm ${ts2}`, 'add rust 4');
      await todos.update(ids['rust 1'] as string, { text: 'rust 1, renamed in TS' });
      await todos.update(ids['ts 1'] as string, { text: 'ts 1, renamed in TS' });
      await todos.update(ids['ts 2'] as string, { text: 'ts 2, renamed in TS' });
      await todos.delete(ids['ts 3'] as string);
      await todos.save({ text: 'ts 4', done: false, createdAt: later + 4 });

      // Both sync; then both hold what the server holds.
      rust.send('sync');
      await ts.syncNow();
      let final: DocsById = {};
      await waitFor(
        async () => {
          final = await waitConverged(server.url, [ts], { timeoutMs: 2_000 });
          expect(await rust!.list()).toEqual(asShown(final));
          return Object.keys(final).length === 6;
        },
        30_000,
        'the example, the TypeScript client and the server to agree',
        200,
      );

      // In creation order; the renames and the ticks both kept (different fields).
      expect(asShown(final)).toEqual([
        { text: 'rust 1, renamed in TS', done: true },
        { text: 'rust 2', done: false },
        { text: 'rust 3', done: false },
        { text: 'rust 4', done: false },
        { text: 'ts 1, renamed in TS', done: true },
        { text: 'ts 4', done: false },
      ]);
      expect(final[ids['ts 2'] as string], 'a removal wins over a concurrent rename (merge)').toBeUndefined();

      // The server's histories: whole, and written by both devices.
      const rust1History = (await history(server.url, ids['rust 1'] as string)) ?? [];
      expectWholeHistory(rust1History, 'rust 1');
      expect(new Set(rust1History.map((entry) => entry.deviceId))).toEqual(new Set([rustDevice, ts.deviceId]));
      for (const id of Object.keys(final)) expectWholeHistory((await history(server.url, id)) ?? [], id);

      expect(await rust.quit()).toBe(0);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- the todo example printed ---\n${rust.printed().slice(-4000)}`);
    }
  });
});
