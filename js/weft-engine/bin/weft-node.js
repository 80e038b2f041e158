#!/usr/bin/env node
// weft-node: weft's demo routes served by the weft engine component under Node.
//   node bin/weft-node.js [--listen IP:PORT] [--root DIR] [--header-timeout S]
//       [--idle-timeout S] [--body-timeout S] [--send-timeout S] [--ws-ping-interval S]
//       [--ws-ping-timeout S] [--ws-origin ORIGIN]...
// (the flags of `weft serve` these routes use; seconds may be fractional). The first line on
// stdout is `weft: listening on http://ADDR/`.

import fs from 'node:fs';

import { createServer } from '../index.js';
import { makeDemo } from '../demo.js';

function usage(message) {
  if (message) process.stderr.write(`weft-node: ${message}\n`);
  process.stderr.write(
    'usage: weft-node [--listen IP:PORT] [--root DIR] [--header-timeout S] [--idle-timeout S]\n' +
      '       [--body-timeout S] [--send-timeout S] [--ws-ping-interval S] [--ws-ping-timeout S]\n' +
      '       [--ws-origin ORIGIN]...\n',
  );
  process.exit(message ? 2 : 0);
}

/** Seconds (fractional allowed) as nanoseconds. */
function nanos(flag, text) {
  const s = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || !Number.isFinite(s)) usage(`${flag}: not a number of seconds: ${text}`);
  return BigInt(Math.round(s * 1e9));
}

let listen = '127.0.0.1:8080';
const limits = {};
const config = { ws: {}, wsOrigins: [] };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const flag = args[i];
  if (flag === '--help' || flag === '-h') usage();
  if (i + 1 >= args.length) usage(`unknown argument or missing value: ${flag}`);
  const value = args[++i];
  switch (flag) {
    case '--listen':
      listen = value;
      break;
    case '--root':
      if (!fs.statSync(value, { throwIfNoEntry: false })?.isDirectory()) usage(`--root: not a directory: ${value}`);
      config.root = value;
      break;
    case '--header-timeout':
      limits.headerTimeout = nanos(flag, value);
      break;
    case '--idle-timeout':
      limits.idleTimeout = nanos(flag, value);
      break;
    case '--body-timeout':
      limits.bodyTimeout = nanos(flag, value);
      break;
    case '--send-timeout':
      // As in weft: a session's output waits for its peer as long as a response's may.
      limits.sendTimeout = nanos(flag, value);
      config.ws.sendTimeout = limits.sendTimeout;
      break;
    case '--ws-ping-interval':
      config.ws.pingInterval = nanos(flag, value);
      break;
    case '--ws-ping-timeout':
      config.ws.pingTimeout = nanos(flag, value);
      break;
    case '--ws-origin':
      config.wsOrigins.push(value);
      break;
    default:
      usage(`unknown argument ${flag}`);
  }
}
const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):([0-9]{1,5})$/.exec(listen);
if (!m || Number(m[3]) > 65535) usage(`--listen: not an address (IP:PORT): ${listen}`);
const host = m[1] ?? m[2];
const port = Number(m[3]);

const server = createServer(makeDemo(config), { limits });
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
