// Bad arguments throw SyncArgumentError naming the argument, before anything is stored locally or sent to the server.

import { describe, expect, it } from 'vitest';

import { createClient, MemoryStorage, SyncArgumentError, type SyncClient } from '../../src/index.js';
import { serverForFile, closeClient, localDocs, openClient, quietLogger, serverDocs, unreachableUrl, waitConverged } from './helpers.js';

const server = serverForFile();

/** Expects `action` to throw (or reject with) a SyncArgumentError whose message matches `names`. */
async function expectArgumentError(action: () => unknown, names: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, `${names} should have been refused`).toBeInstanceOf(SyncArgumentError);
  expect((thrown as Error).message).toMatch(names);
}

describe('bad arguments', () => {
  it('createClient refuses bad options before it opens or stores anything', async () => {
    const storage = new MemoryStorage();
    const base = { serverUrl: server.url, collections: ['todos'], storage, logger: quietLogger };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ collections: ['bad name'] }, /collection name "bad name" is invalid/],
      [{ collections: ['todos', 'x'.repeat(65)] }, /collection name "x{65}" is invalid/],
      [{ collections: [] }, /collections must name at least one collection/],
      [{ namespace: 'a/b' }, /namespace "a\/b" is invalid/],
      [{ serverUrl: 'not a url' }, /serverUrl "not a url" is not a URL/],
      [{ storage: 'floppy' }, /storage "floppy" is unknown/],
    ];
    for (const [override, names] of cases) {
      await expectArgumentError(() => createClient({ ...base, ...override } as never), names);
    }
    // Nothing was stored: no device id, no queue; the server saw no device.
    expect(await storage.transaction('readonly', (tx) => tx.getMeta('deviceId'))).toBeUndefined();
    expect(await storage.loadQueue()).toEqual([]);
    const devices = await fetch(`${server.url}/v1/devices`).then((response) => response.json() as Promise<{ devices: unknown[] }>);
    expect(devices.devices).toEqual([]);
  });

  it('collection methods refuse bad arguments and leave the queue and the view as they were', async () => {
    // Offline, so the queue holds still while the bad calls are made.
    const storage = new MemoryStorage();
    const options = { collections: ['todos', 'notes'], storage };
    const client = await openClient(await unreachableUrl(), options);
    const todos = client.collection('todos');
    await todos.save({ id: 'kept', text: 'a valid write', done: false });
    const queued = await client.pendingCount();
    expect(queued).toBe(1);
    const view = await localDocs(client);

    const unchanged = async (what: string) => {
      expect(await client.pendingCount(), `queue after ${what}`).toBe(queued);
      expect(await localDocs(client), `view after ${what}`).toEqual(view);
    };
    const cases: [string, () => unknown, RegExp][] = [
      ['an unknown collection', () => client.collection('other'), /collection "other" is not one of this client's collections/],
      ['an invalid collection name', () => client.collection('bad name'), /collection "bad name"/],
      ['save(null)', () => todos.save(null as never), /the document must be a plain object, not null/],
      ['save(array)', () => todos.save([1, 2] as never), /the document must be a plain object, not an array/],
      ['save(string)', () => todos.save('text' as never), /the document must be a plain object, not string/],
      ['save(NaN field)', () => todos.save({ n: Number.NaN }), /the document\.n is not a finite number/],
      ['save(Date field)', () => todos.save({ when: new Date() as never }), /the document\.when is not JSON/],
      ['save(function in an array)', () => todos.save({ list: [1, (() => 1) as never] }), /the document\.list\[1\] is not JSON/],
      ['save(empty id)', () => todos.save({ id: '', text: 'x' }), /document id "" is invalid/],
      ['save(numeric id)', () => todos.save({ id: 7 as never, text: 'x' }), /document id 7 is invalid/],
      ['save(long id)', () => todos.save({ id: 'i'.repeat(129), text: 'x' }), /document id "i{129}" is invalid/],
      ['where(unknown operator)', () => todos.where('done', '~=' as never, true), /where operator "~=" is unknown/],
      ['where(no field)', () => todos.where('', '==', true), /where needs a field name/],
      ['where(in without an array)', () => todos.where('done', 'in', true), /where done in needs an array/],
      ['where(undefined value)', () => todos.where('done', '==', undefined as never), /the value of where done is not JSON/],
      ['orderBy(bad direction)', () => todos.orderBy('text', 'up' as never), /orderBy direction "up" is not asc or desc/],
      ['limit(-1)', () => todos.where('done', '==', false).limit(-1), /limit must be a whole number, not -1/],
      ['update(missing document)', () => todos.update('missing', { done: true }), /no document "missing" in "todos" to update/],
      ['update(string patch)', () => todos.update('kept', 'done' as never), /the update must be a plain object, not string/],
      ['update(bad id)', () => todos.update('' as never, { done: true }), /document id "" is invalid/],
      ['update(Infinity)', () => todos.update('kept', { n: Number.POSITIVE_INFINITY }), /the update\.n is not a finite number/],
      ['delete(bad id)', () => todos.delete(42 as never), /document id 42 is invalid/],
      ['get(bad id)', () => todos.get(undefined as never), /document id undefined is invalid/],
    ];
    for (const [what, action, names] of cases) {
      await expectArgumentError(action, names);
      await unchanged(what);
    }
    // A delete of a document that does not exist is not an error, and queues nothing.
    await todos.delete('never-existed');
    await unchanged('delete(never-existed)');

    // Only the valid writes reach the server.
    await todos.update('kept', { done: true });
    await closeClient(client);
    const online = await openClient(server, options);
    const final = await waitConverged(server.url, [online]);
    expect(final).toEqual({ kept: { text: 'a valid write', done: true } });
    expect(await serverDocs(server.url, 'notes')).toEqual({});
  });

  it('a closed client refuses writes', async () => {
    const client: SyncClient = await openClient(server);
    await client.close();
    await expect(client.collection('todos').save({ text: 'late' })).rejects.toThrow(/closed/);
  });
});
