// The test harness against the real sync-server binary: a bulk sync write
// over HTTP is readable back and still there after a restart or a kill,
// and a server that cannot start says why.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { api, metric, startServer, type RunningServer } from '../support/server.js';

describe('sync-server harness', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('answers a bulk sync write and keeps it across a restart', async () => {
    const http = api(server.url);
    const response = await http.post<{
      success: boolean;
      results: { opId: string; status: string; version: number }[];
    }>('/v1/sync', {
      operations: [
        { opId: 'op-1', action: 'create', collection: 'todos', id: 't1', data: { text: 'x' } },
      ],
    });
    expect(response.status).toBe(200);
    expect(response.body.success).toBe(true);
    expect(response.body.results).toEqual([
      expect.objectContaining({ opId: 'op-1', status: 'success', version: 1 }),
    ]);

    const written = await http.document('default', 'todos', 't1');
    expect(written).toMatchObject({
      id: 't1',
      namespace: 'default',
      collection: 'todos',
      data: { text: 'x' },
      version: 1,
      deleted: false,
    });
    expect(await http.documents('default', 'todos', { limit: 1 })).toHaveLength(1);
    expect(await http.document('default', 'todos', 'missing')).toBeUndefined();

    const port = server.port;
    await server.restart();
    expect(server.port).toBe(port);
    expect(await http.document('default', 'todos', 't1')).toEqual(written);
    expect(await metric(server.url, 'sync_connections')).toBe(0);
  });
});

describe('sync-server harness failures', () => {
  it('restarts a killed server on the same port and data', async () => {
    // A kill loses what sled had not flushed yet under `SYNC_DURABILITY=os`
    // (the tests' default): a test that kills the server asks for fsync.
    const server = await startServer({
      config: 'heartbeat_secs = 5\n',
      env: { SYNC_DURABILITY: 'fsync' },
    });
    try {
      const http = api(server.url);
      await http.sync({
        operations: [
          { opId: 'op-k', action: 'create', collection: 'notes', id: 'n1', data: { n: 1 } },
        ],
      });
      await server.kill();
      await expect(fetch(`${server.url}/health`)).rejects.toThrow();
      await server.restart();
      expect(await http.document('default', 'notes', 'n1')).toMatchObject({ data: { n: 1 } });
      expect(server.output()).toContain('sync-server exited: SIGKILL');
    } finally {
      await server.stop();
    }
  });

  it('reports the output of a server that cannot start', async () => {
    await expect(startServer({ config: 'heartbeat_secs = 0\n' })).rejects.toThrow(
      /exited before it was ready[\s\S]*heartbeat_secs/,
    );
  });
});
