// Node's own `http` module for scripts/compare-servers: a minimal static file server over the
// fixture site (GET and HEAD, 404 for a missing file, 405 with Allow otherwise) and, through the
// `ws` package (pinned by the script), a WebSocket echo on /echo. No ranges, no conditionals,
// no compression: what an application written on `http` alone does.
// Usage: node node-http.cjs PORT ROOT
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const port = Number(process.argv[2]);
const root = path.resolve(process.argv[3]);
const types = { '.txt': 'text/plain', '.html': 'text/html', '.json': 'application/json', '.css': 'text/css' };
const server = http.createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
    res.end('method not allowed\n');
    return;
  }
  let p = decodeURIComponent(new URL(req.url, 'http://localhost').pathname);
  if (p.endsWith('/')) p += 'index.html';
  const file = path.join(root, p);
  if (!file.startsWith(root + path.sep)) { res.writeHead(404); res.end(); return; }
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('not found\n'); return; }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream', 'Content-Length': data.length });
    res.end(req.method === 'HEAD' ? undefined : data);
  });
});
let WebSocketServer = null;
try { WebSocketServer = require('ws').WebSocketServer; } catch (e) { /* no echo without ws */ }
if (WebSocketServer) {
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (new URL(req.url, 'http://localhost').pathname !== '/echo') { socket.destroy(); return; }
    wss.handleUpgrade(req, socket, head, (ws) => {
      // ws reports protocol errors (and closes with 1002/1007) here; unhandled, they would
      // end the process.
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
}
server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
