// The demo application of weft (crates/weft-app/src/demo.rs) for the routes that need no
// files or shared state, with the same statuses, fields and bodies, and weft's method rules:
//
//   GET  /hello            Hello, world!
//   POST /echo             the request body streamed back (with backpressure)
//   GET  /sheep?n=N&ms=M   N lines "K sheep\n", one every M ms, chunked
//   GET  /api/users/:id    {"id":ID,"name":"User ID"} for a canonical decimal id, else 404
//   GET  /ws/echo          WebSocket: every message echoed
//   other paths            404 (GET, HEAD), as weft with an empty root
//
// HEAD is answered wherever GET is (the engine drops the body), OPTIONS is 204 with Allow, a
// known path with another method is 405 with Allow, a method weft does not know is 501,
// `OPTIONS *` lists every method. Not here: weft's middleware fields (Server, security
// headers) and compressed /sheep bodies (weft compresses them when Accept-Encoding asks).

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
function route(path) {
  switch (path) {
    case '/hello':
      return { methods: GET, handle: hello };
    case '/echo':
      return { methods: POST, handle: echo };
    case '/sheep':
      return { methods: GET, handle: sheep };
    case '/ws/echo':
      return { methods: GET, handle: wsEcho };
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

/** The demo application: `app(req, res)` for `createServer`. */
export function demo(req, res) {
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
  const found = route(req.path);
  if (found && takes(found.methods)) {
    found.handle(req, res);
  } else if (found) {
    refuse(res, method, found.methods);
  } else if (takes(GET)) {
    notFound(res); // weft's file fallback, with nothing to serve
  } else {
    refuse(res, method, GET);
  }
}

function hello(req, res) {
  text(res, 200, 'Hello, world!');
}

/** POST /echo: the head goes out with the first body event (so `100 Continue` is sent when
 * the body is first read), then each piece as it is read. The engine hands body data only
 * while the output has room. */
function echo(req, res) {
  const contentType = req.header('content-type') ?? 'application/octet-stream';
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
function wsEcho(req, res) {
  res.websocket({
    message(session, data, isText) {
      if (isText) session.sendText(data);
      else session.sendBinary(data);
    },
  });
}
