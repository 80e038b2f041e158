// The demo application of weft (crates/weft-app/src/demo.rs) for the routes that need no
// files or shared state, with the same statuses, fields and bodies, and weft's method rules:
//
//   GET  /hello            Hello, world!
//   POST /echo             the request body streamed back (with backpressure)
//   GET  /sheep?n=N&ms=M   N lines "K sheep\n", one every M ms, chunked
//   GET  /api/users/:id    {"id":ID,"name":"User ID"} for a canonical decimal id, else 404
//   GET  /ws/echo          WebSocket: every message echoed
//   GET  /ws/chat?room=R   WebSocket: each text message sent to every member of room R
//   other paths            files below `root` (GET, HEAD) when it is given, else 404
//
// HEAD is answered wherever GET is (the engine drops the body), OPTIONS is 204 with Allow, a
// known path with another method is 405 with Allow, a method weft does not know is 501,
// `OPTIONS *` lists every method. Not here: weft's middleware fields (Server, security
// headers), compressed /sheep bodies (weft compresses them when Accept-Encoding asks) and the
// file service's validators, caching fields and ranges.

import fs from 'node:fs';
import nodePath from 'node:path';

const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json';

const GET = 1;
const HEAD = 2;
const POST = 4;
const OPTIONS = 8;
const NAMES = [
  [GET, 'GET'],
  [HEAD, 'HEAD'],
  [OPTIONS, 'OPTIONS'],
  [POST, 'POST'],
];
/** Every route's methods, and the fallback's (GET). */
const ALL = GET | POST;

/** `Allow` for a set: HEAD with GET, OPTIONS always, alphabetical. */
function allow(set) {
  let s = set | OPTIONS;
  if (s & GET) s |= HEAD;
  return NAMES.filter(([bit]) => s & bit)
    .map(([, name]) => name)
    .join(', ');
}

/** Decodes one path segment as weft's router does: a malformed escape, `%2F` or bytes that
 * are not UTF-8 do not match (undefined). */
function decodeSegment(segment) {
  if (/%(?![0-9A-Fa-f]{2})/.test(segment)) return undefined;
  if (/%2f/i.test(segment)) return undefined;
  const raw = [];
  for (let i = 0; i < segment.length; i++) {
    if (segment[i] === '%') {
      raw.push(parseInt(segment.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      raw.push(...Buffer.from(segment[i], 'utf8'));
    }
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(raw));
  } catch {
    return undefined;
  }
}

/** Which route a path is, or undefined. */
function route(path, config) {
  switch (path) {
    case '/hello':
      return { methods: GET, handle: hello };
    case '/echo':
      return { methods: POST, handle: echo };
    case '/sheep':
      return { methods: GET, handle: sheep };
    case '/ws/echo':
      return { methods: GET, handle: (req, res) => wsEcho(req, res, config) };
    case '/ws/chat':
      return { methods: GET, handle: (req, res) => wsChat(req, res, config) };
  }
  const rest = path.startsWith('/api/users/') ? path.slice('/api/users/'.length) : undefined;
  if (rest !== undefined && rest !== '' && !rest.includes('/')) {
    const id = decodeSegment(rest);
    if (id !== undefined) return { methods: GET, handle: (req, res) => user(res, id) };
  }
  return undefined;
}

function methodBit(method) {
  switch (method) {
    case 'GET':
      return GET;
    case 'HEAD':
      return HEAD;
    case 'POST':
      return POST;
    case 'OPTIONS':
      return OPTIONS;
    case 'PUT':
    case 'DELETE':
    case 'PATCH':
      return 0;
    default:
      return undefined; // CONNECT, TRACE (no route lists them) and unknown methods
  }
}

function text(res, status, body) {
  res.full(status, [['Content-Type', TEXT]], body);
}

function notFound(res) {
  text(res, 404, 'not found\n');
}

function refuse(res, method, set) {
  if (method === OPTIONS) {
    res.full(204, [['Allow', allow(set)]], '');
    return;
  }
  res.full(405, [['Allow', allow(set)], ['Content-Type', TEXT]], 'method not allowed\n');
}

/**
 * The demo application for `createServer`, configured: `root` (a directory served for paths
 * no route takes), `wsOrigins` (origins allowed to open /ws/echo; none: any), `ws` (session
 * settings in nanoseconds: `pingInterval`, `pingTimeout`, `sendTimeout`).
 */
export function makeDemo(config = {}) {
  const withRooms = { ...config, rooms: new Map() };
  return (req, res) => demoRequest(req, res, withRooms);
}

/** The demo with weft's defaults and no files. */
export const demo = makeDemo();

function demoRequest(req, res, config) {
  const method = methodBit(req.method);
  if (method === undefined) {
    text(res, 501, 'method not implemented\n');
    return;
  }
  if (req.target === '*') {
    if (method === OPTIONS) res.full(204, [['Allow', allow(ALL)]], '');
    else notFound(res);
    return;
  }
  const takes = (set) => (set & method) !== 0 || ((set & GET) !== 0 && method === HEAD);
  const found = route(req.path, config);
  if (found && takes(found.methods)) {
    found.handle(req, res);
  } else if (found) {
    refuse(res, method, found.methods);
  } else if (takes(GET)) {
    // weft's file fallback (GET, HEAD); with no root, nothing to serve.
    if (config.root) serveFile(req, res, config.root, req.path);
    else notFound(res);
  } else {
    refuse(res, method, GET);
  }
}

/** Decodes `%XX` escapes of a whole path; undefined for a malformed one or non-UTF-8. */
function decodePath(path) {
  if (/%(?![0-9A-Fa-f]{2})/.test(path)) return undefined;
  try {
    return decodeURIComponent(path);
  } catch {
    return undefined;
  }
}

const CONTENT_TYPES = {
  txt: TEXT,
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  json: JSON_TYPE,
  svg: 'image/svg+xml; charset=utf-8',
  png: 'image/png',
  wasm: 'application/wasm',
};

/** A file below `root`: names decoded, dot names refused (404), a directory without its `/`
 * redirected (301), `index.html` for a directory; the body streamed while the output has
 * room. */
function serveFile(req, res, root, path) {
  const decoded = decodePath(path);
  if (decoded === undefined) return notFound(res);
  const names = decoded.split('/').filter((n) => n !== '');
  if (names.some((n) => n.startsWith('.') || n.includes('\0') || n.includes('\\'))) {
    return notFound(res);
  }
  let full = nodePath.join(root, ...names);
  let stat;
  try {
    const real = fs.realpathSync(full);
    const realRoot = fs.realpathSync(root);
    if (real !== realRoot && !real.startsWith(realRoot + nodePath.sep)) return notFound(res);
    stat = fs.statSync(real);
  } catch {
    return notFound(res);
  }
  if (stat.isDirectory()) {
    if (!decoded.endsWith('/')) {
      res.full(301, [['Location', `${path}/`], ['Content-Type', TEXT]], 'moved permanently\n');
      return;
    }
    full = nodePath.join(full, 'index.html');
  }
  let fd;
  try {
    fd = fs.openSync(full, 'r');
    stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw new Error('not a file');
  } catch {
    if (fd !== undefined) fs.closeSync(fd);
    return notFound(res);
  }
  const ext = nodePath.extname(full).slice(1).toLowerCase();
  const type = CONTENT_TYPES[ext] ?? 'application/octet-stream';
  const size = stat.size;
  let offset = 0;
  const done = () => {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
  };
  res.onclose = done;
  res.head(200, [['Content-Type', type]], size);
  if (req.method === 'HEAD') {
    done();
    res.end();
    return;
  }
  const chunk = Buffer.allocUnsafe(64 * 1024);
  const step = () => {
    while (fd !== undefined && offset < size) {
      let n;
      try {
        n = fs.readSync(fd, chunk, 0, Math.min(chunk.length, size - offset), offset);
      } catch {
        n = 0;
      }
      if (n === 0) {
        // The file shrank or failed: the response cannot be completed.
        done();
        res.abort();
        return;
      }
      offset += n;
      if (!res.write(chunk.subarray(0, n)) && offset < size) {
        res.ondrain = step;
        return;
      }
    }
    if (fd !== undefined) {
      done();
      res.end();
    }
  };
  step();
}

function hello(req, res) {
  text(res, 200, 'Hello, world!');
}

/** POST /echo: the head goes out with the first body event (so `100 Continue` is sent when
 * the body is first read), then each piece as it is read. The engine hands body data only
 * while the output has room. */
function echo(req, res) {
  // The value as sent (bytes: it may hold obs-text).
  const contentType = req.headerBytes('content-type') ?? 'application/octet-stream';
  const framing = req.body;
  const length = framing.tag === 'length' ? framing.val : framing.tag === 'none' ? 0n : undefined;
  const start = () => {
    if (!res.headSent) res.head(200, [['Content-Type', contentType]], length);
  };
  req.ondata = (chunk) => {
    start();
    res.write(chunk);
  };
  req.onend = () => {
    start();
    res.end();
  };
}

/** A u32 or u64 as Rust's `str::parse` reads it (digits, an optional leading `+`). */
function parseUnsigned(text, max) {
  if (!/^\+?[0-9]+$/.test(text)) return undefined;
  const n = BigInt(text);
  return n <= max ? n : undefined;
}

function queryParam(query, key) {
  if (query === undefined) return undefined;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if (eq >= 0 && pair.slice(0, eq) === key) return pair.slice(eq + 1);
  }
  return undefined;
}

/** GET /sheep?n=N&ms=M: the "count sheep" generator, one line every M ms (10 and 1000 when
 * absent or not a number). */
function sheep(req, res) {
  const nText = queryParam(req.query, 'n');
  const msText = queryParam(req.query, 'ms');
  const count = (nText === undefined ? undefined : parseUnsigned(nText, 0xffffffffn)) ?? 10n;
  const ms = (msText === undefined ? undefined : parseUnsigned(msText, 0xffffffffffffffffn)) ?? 1000n;
  if (count > 100000n || ms > 60000n) {
    text(res, 400, 'n <= 100000 and ms <= 60000\n');
    return;
  }
  res.head(200, [['Content-Type', TEXT]]);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  const total = Number(count);
  const interval = Number(ms);
  const first = performance.now();
  let next = 1;
  let timer = null;
  const step = () => {
    timer = null;
    if (res.conn.finished) return;
    if (next > total) {
      res.end();
      return;
    }
    res.write(`${next} sheep\n`);
    next += 1;
    if (next > total) {
      res.end();
      return;
    }
    const due = first + (next - 1) * interval;
    timer = setTimeout(step, Math.max(0, due - performance.now()));
  };
  step();
}

function user(res, idText) {
  const valid = /^[0-9]+$/.test(idText) && BigInt(idText) <= 0xffffffffffffffffn;
  if (valid && BigInt(idText).toString() === idText) {
    res.full(200, [['Content-Type', JSON_TYPE]], `{"id":${idText},"name":"User ${idText}"}`);
  } else {
    notFound(res);
  }
}

/** GET /ws/echo: every text and binary message sent back. */
function wsEcho(req, res, config) {
  const handler = {
    message(session, data, isText) {
      if (isText) session.sendText(data);
      else session.sendBinary(data);
    },
  };
  res.websocket(handler, { ...(config.ws || {}), origins: config.wsOrigins });
}

/** The chat's message and frame limit (weft's `CHAT_MAX_MESSAGE`). */
const CHAT_MAX_MESSAGE = 64 * 1024;
/** The longest room name in bytes (longer ones are cut, as weft does). */
const MAX_ROOM = 64;
/** A member whose unsent output passes this is closed with 1008 (weft's chat bounds each
 * member's mailbox at 1 MiB). */
const CHAT_MAX_BACKLOG = 1024 * 1024;

/** The room name of `?room=`: at most MAX_ROOM bytes, cut at a character boundary. */
function roomName(query) {
  const raw = queryParam(query, 'room') ?? '';
  const encoded = new TextEncoder().encode(raw);
  if (encoded.length <= MAX_ROOM) return raw;
  let end = MAX_ROOM;
  while (end > 0 && (encoded[end] & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(encoded.subarray(0, end));
}

/** GET /ws/chat?room=NAME: each text message goes to every member of the room, the sender
 * included; a binary message closes with 1003, a frame or message over 64 KiB with 1009. */
function wsChat(req, res, config) {
  const rooms = config.rooms;
  const room = roomName(req.query);
  let self;
  const handler = {
    open(session) {
      self = session;
      if (!rooms.has(room)) rooms.set(room, new Set());
      rooms.get(room).add(session);
    },
    message(session, data, isText) {
      if (!isText) {
        session.close(1003, 'text messages only');
        return;
      }
      for (const member of rooms.get(room) ?? []) {
        if (member.backlog() > CHAT_MAX_BACKLOG) member.close(1008, 'too slow');
        else member.sendText(data);
      }
    },
    closed() {
      const members = rooms.get(room);
      if (!members || !self) return;
      members.delete(self);
      if (members.size === 0) rooms.delete(room);
    },
  };
  const limits = { maxMessage: CHAT_MAX_MESSAGE, maxFrame: CHAT_MAX_MESSAGE };
  res.websocket(handler, { ...(config.ws || {}), ...limits, origins: config.wsOrigins });
}
