#!/usr/bin/env node
// weft-node: weft's demo routes served by the weft engine component under Node.
//   node bin/weft-node.js [--listen IP:PORT]   (default 127.0.0.1:8080; port 0 picks one)
// The first line on stdout is `weft: listening on http://ADDR/`.

import { createServer } from '../index.js';
import { demo } from '../demo.js';

function usage(message) {
  if (message) process.stderr.write(`weft-node: ${message}\n`);
  process.stderr.write('usage: weft-node [--listen IP:PORT]\n');
  process.exit(2);
}

let listen = '127.0.0.1:8080';
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--listen' && i + 1 < args.length) listen = args[++i];
  else if (args[i] === '--help' || args[i] === '-h') usage();
  else usage(`unknown argument ${args[i]}`);
}
const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(listen);
if (!m || Number(m[3]) > 65535) usage(`--listen: not an address (IP:PORT): ${listen}`);
const host = m[1] ?? m[2];
const port = Number(m[3]);

const server = createServer(demo);
server.on('error', (e) => {
  process.stderr.write(`weft-node: ${e.message}\n`);
  process.exit(1);
});
server.listen({ host, port, backlog: 1024 }, () => {
  const a = server.address();
  const shown = a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  process.stdout.write(`weft: listening on http://${shown}/\n`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
