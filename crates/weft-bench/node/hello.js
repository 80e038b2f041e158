// Node baseline for scripts/bench: `node hello.js PORT [HOST]`.
// Every request gets 200, Content-Type: text/plain, body "Hello, world!" (13 bytes).
'use strict';

const http = require('http');

const port = Number.parseInt(process.argv[2] || '8083', 10);
const host = process.argv[3] || '127.0.0.1';
const body = Buffer.from('Hello, world!');

const server = http.createServer((req, res) => {
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Content-Length': body.length,
  });
  res.end(body);
});

// Match the other servers: no idle timeout cutting wrk's keep-alive connections short.
server.keepAliveTimeout = 0;
server.headersTimeout = 0;
server.requestTimeout = 0;

server.listen(port, host, () => {
  const a = server.address();
  console.log(`listening on ${a.address}:${a.port}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
