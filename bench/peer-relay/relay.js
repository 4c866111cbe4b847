// The peer of our benchmarks: seed 001's Node.js backend, written out in
// full. It relays `insert`/`update`/`delete` messages to every subscriber
// of the collection and answers `ping`; it persists nothing, resolves
// nothing and acknowledges nothing, which is the point of comparison.
//
// Usage: node relay.js [port]   (prints "listening <port>" when ready)
'use strict';

const WebSocket = require('ws');

const port = Number(process.argv[2] || process.env.PORT || 8080);
const wss = new WebSocket.Server({ port, perMessageDeflate: false });

// collection name -> Set of sockets
const subscribers = new Map();

function authenticateToken(token) {
  // Seed 001 checks a token; the benchmark runs without one.
  return token === null || typeof token === 'string';
}

function subscribeToCollection(ws, collection) {
  let set = subscribers.get(collection);
  if (!set) {
    set = new Set();
    subscribers.set(collection, set);
  }
  set.add(ws);
  ws.collections.add(collection);
}

function broadcastToCollection(collection, message, raw) {
  const set = subscribers.get(collection);
  if (!set) return;
  for (const client of set) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(raw);
    }
  }
}

wss.on('connection', (ws, req) => {
  const token = new URL(req.url, 'ws://localhost').searchParams.get('token');
  if (!authenticateToken(token)) {
    ws.close();
    return;
  }
  ws.collections = new Set();

  ws.on('message', (data) => {
    let message;
    try {
      message = JSON.parse(data);
    } catch (error) {
      return;
    }
    switch (message.type) {
      case 'subscribe':
        subscribeToCollection(ws, message.collection);
        // Not in the seed: one answer so the load generator knows the
        // subscription is in place (it costs one message per subscriber).
        ws.send(JSON.stringify({ type: 'subscribed', id: message.collection }));
        break;
      case 'insert':
      case 'update':
      case 'delete':
        broadcastToCollection(message.collection, message, data.toString());
        break;
      case 'ping':
        ws.send(JSON.stringify({ type: 'pong' }));
        break;
    }
  });

  ws.on('close', () => {
    for (const collection of ws.collections) {
      const set = subscribers.get(collection);
      if (set) set.delete(ws);
    }
  });
});

wss.on('listening', () => {
  console.log(`listening ${wss.address().port}`);
});
