// weft-engine for Node: weft's sans-IO HTTP/1.1 + WebSocket engine (the component
// `weft-engine.wasm`, transpiled by jco into ./engine/) driven by node:net.
//
// The engine parses, frames, times out and answers protocol errors; this file owns the sockets
// and the clocks and follows the drain order of docs/ENGINE.md: after any input, poll events
// until need-data / paused (or until the application stops pulling body data), write the
// output, arm the next deadline.
//
//   import { createServer } from 'weft-engine';
//   const server = createServer((req, res) => res.full(200, [['Content-Type', 'text/plain']], 'hi'));
//   server.listen(8080, '127.0.0.1');

import net from 'node:net';

import { http, websocket } from './engine/weft-engine.js';

export { http, websocket };

/** jco's name for a resource's destructor (Node 20 may lack `Symbol.dispose`). */
const dispose = Symbol.dispose || Symbol.for('dispose');

/** Drops an engine resource now (rather than when the garbage collector finds it). */
function release(resource) {
  if (resource && resource[dispose]) resource[dispose]();
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Monotonic nanoseconds since this module loaded (the engine's `instant`). */
const origin = process.hrtime.bigint();
export function instant() {
  return process.hrtime.bigint() - origin;
}

/** The engine's `now`: the monotonic instant and the wall-clock second for `Date`. */
export function now() {
  return { instant: instant(), unixSeconds: BigInt(Math.floor(Date.now() / 1000)) };
}

/** Bytes for a string or a byte array. */
export function bytes(data) {
  if (typeof data === 'string') return encoder.encode(data);
  if (data instanceof Uint8Array) return data;
  return new Uint8Array(data);
}

/** `[name, Uint8Array]` pairs from `[name, string | bytes]` pairs. */
function fields(list) {
  return (list || []).map(([name, value]) => [String(name), bytes(value)]);
}

/** The payload of a WIT error result (jco throws it as `ComponentError.payload`). */
function payload(err) {
  if (err && typeof err === 'object' && 'payload' in err) return err.payload;
  throw err;
}

/** The engine's WebSocket session defaults (a constant: asked once). */
const WS_DEFAULTS = websocket.defaultSessionConfig();

/** Output the engine may hold before the application stops being fed body data or messages. */
const HIGH_WATER = 64 * 1024;
/** Largest slice taken from the engine's output per write. */
const WRITE_SLICE = 256 * 1024;
/** How long a closed connection keeps reading (and discarding) before it is destroyed. */
const LINGER_MS = 2000;

/**
 * One request as the application sees it.
 * `method` (e.g. 'GET', as sent), `target`, `path`, `query` (or undefined), `version`
 * ('HTTP/1.0' | 'HTTP/1.1'), `fields` ([name, Uint8Array] pairs), `body` (the framing:
 * { tag: 'none' } | { tag: 'length', val: bigint } | { tag: 'chunked' }), `header(name)`,
 * `headerBytes(name)`.
 * Set `ondata(chunk)` and `onend()` to read the body: it is pulled only while the response
 * output has room (backpressure), and `Expect: 100-continue` is answered when it is first
 * pulled.
 */
class Request {
  constructor(head) {
    const m = head.method;
    this.method = m.tag === 'other' ? m.val : m.tag.toUpperCase();
    this.target = head.target;
    this.path = head.path;
    this.query = head.query;
    this.version = head.version === 'http10' ? 'HTTP/1.0' : 'HTTP/1.1';
    this.fields = head.fields;
    this.body = head.body;
    this.keepAlive = head.keepAlive;
    this.upgrade = head.upgrade;
    this.ondata = null;
    this.onend = null;
    this.versionTag = head.version;
    this.methodTag = m;
  }

  /** The first value of field `name` (any case) as bytes, or undefined. */
  headerBytes(name) {
    const lower = name.toLowerCase();
    const found = this.fields.find(([n]) => n.toLowerCase() === lower);
    return found ? found[1] : undefined;
  }

  /** The first value of field `name` (any case) as a string (UTF-8, lossy), or undefined. */
  header(name) {
    const value = this.headerBytes(name);
    return value === undefined ? undefined : decoder.decode(value);
  }
}

/**
 * The response side of one exchange. `full`, or `head` + `write`* + `end`; `websocket` for
 * an upgrade. `write` returns false when the output is above its high-water mark: wait for
 * `ondrain`.
 */
class Response {
  constructor(conn, request) {
    this.conn = conn;
    this.request = request;
    this.headSent = false;
    this.done = false;
    this.ondrain = null;
    this.onclose = null; // called when the connection ends before the response did
  }

  /** A whole response: status, fields ([name, value] pairs), body (string or bytes). */
  full(status, fieldList, body) {
    const c = this.conn;
    try {
      c.engine.sendFull(status, fields(fieldList), bytes(body ?? ''), now());
    } catch (e) {
      throw new Error(`send-full: ${payload(e)}`);
    }
    this.headSent = true;
    this.done = true;
    c.schedule();
  }

  /** A response head; `length` (a number or bigint) for a known body, undefined to stream. */
  head(status, fieldList, length) {
    const body = length === undefined ? { tag: 'stream' } : { tag: 'length', val: BigInt(length) };
    try {
      this.conn.engine.sendResponse({ status, fields: fields(fieldList), body }, now());
    } catch (e) {
      throw new Error(`send-response: ${payload(e)}`);
    }
    this.headSent = true;
    this.conn.schedule();
  }

  /** Body bytes; false when the output is full (continue after `ondrain`). After the
   * connection ended, nothing is sent and false is returned (see `onclose`). */
  write(data) {
    if (this.conn.finished) return false;
    try {
      this.conn.engine.sendData(bytes(data), instant());
    } catch (e) {
      throw new Error(`send-data: ${payload(e)}`);
    }
    this.conn.schedule();
    return this.conn.writable();
  }

  /** Ends the body (with trailers for a chunked one). */
  end(trailers) {
    this.done = true;
    if (this.conn.finished) return;
    try {
      this.conn.engine.sendEnd(fields(trailers), instant());
    } catch (e) {
      throw new Error(`send-end: ${payload(e)}`);
    } finally {
      this.conn.schedule();
    }
  }

  /** Gives up on the exchange: the peer sees an incomplete message, then the close. */
  abort() {
    this.done = true;
    if (this.conn.finished) return;
    this.conn.engine.abort();
    this.conn.schedule();
  }

  /**
   * Accepts a WebSocket handshake (or answers its refusal: 400, 405 or 426; 403 for an
   * origin not in `options.origins`). `handler` has `message(session, data, isText)` and
   * optionally `open(session)` (once the 101 is written), `close(code, reason)` and `closed()`; `options` has `protocols` (string[]),
   * `deflate` (boolean, default true), `origins` (string[]; empty: any) and the session's
   * `maxMessage`, `maxFrame`, `pingInterval` (null: never), `pingTimeout`, `closeTimeout`,
   * `sendTimeout` (nanoseconds). Returns whether it was accepted.
   */
  websocket(handler, options = {}) {
    const req = this.request;
    const hsOptions = { protocols: options.protocols || [], deflate: options.deflate !== false };
    let accepted;
    try {
      accepted = websocket.checkHandshake(req.methodTag, req.versionTag, req.fields, hsOptions);
    } catch (e) {
      const refusal = payload(e);
      const f = refusal.fields.concat([['Content-Type', bytes('text/plain; charset=utf-8')]]);
      this.full(refusal.status, f, `${refusal.reason}\n`);
      return false;
    }
    const origins = options.origins || [];
    const origin = req.header('origin');
    if (origins.length > 0 && origin !== undefined) {
      const lower = origin.toLowerCase();
      if (!origins.some((o) => o.toLowerCase() === lower)) {
        const f = [['Content-Type', 'text/plain; charset=utf-8']];
        this.full(403, f, 'this origin may not open a WebSocket here\n');
        return false;
      }
    }
    const config = { ...WS_DEFAULTS };
    for (const key of ['maxMessage', 'maxFrame', 'pingTimeout', 'closeTimeout', 'sendTimeout']) {
      if (options[key] !== undefined) config[key] = BigInt(options[key]);
    }
    if (options.pingInterval !== undefined) {
      config.pingInterval = options.pingInterval === null ? undefined : BigInt(options.pingInterval);
    }
    config.deflate = accepted.deflate;
    this.conn.pendingSession = { config, handler };
    this.full(101, accepted.responseFields, '');
    return true;
  }
}

/** The sending half of a WebSocket session, as a handler sees it. */
class Session {
  constructor(conn, engineSession) {
    this.conn = conn;
    this.engine = engineSession;
  }
  sendText(text) {
    return this.#send(() => this.engine.sendText(String(text), instant()));
  }
  sendBinary(data) {
    return this.#send(() => this.engine.sendBinary(bytes(data), instant()));
  }
  ping(data) {
    return this.#send(() => this.engine.sendPing(bytes(data ?? ''), instant()));
  }
  /** Bytes sent but not yet taken by the peer: the engine's output and the socket's buffer. */
  backlog() {
    if (this.conn.finished) return 0;
    return Number(this.engine.pendingTransmit()) + this.conn.socket.writableLength;
  }
  close(code = 1000, reason = '') {
    if (this.conn.finished) return;
    this.engine.close(code, reason, instant());
    this.conn.schedule();
  }
  #send(f) {
    if (this.conn.finished) return 'closed';
    try {
      f();
    } catch (e) {
      return payload(e); // 'closed' | 'too-large'
    }
    this.conn.schedule();
    return undefined;
  }
}

/** One TCP connection: the engine resource, the socket, the input the engine refused yet. */
class Connection {
  constructor(socket, app, limits) {
    this.socket = socket;
    this.app = app;
    this.engine = new http.ServerConnection(limits, instant());
    this.queued = []; // input chunks the engine has not accepted yet
    this.exchange = null; // { req, res }
    this.session = null; // { engine, handler, api }
    this.pendingSession = null;
    this.timer = null;
    this.scheduled = false;
    this.finished = false;
    socket.setNoDelay(true);
    socket.on('data', (chunk) => {
      this.queued.push(chunk);
      this.pump();
    });
    socket.on('end', () => {
      this.eof = true;
      this.pump();
    });
    socket.on('drain', () => this.pump());
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    this.pump();
  }

  /** The output has room: the application may produce more. */
  writable() {
    if (this.socket.writableNeedDrain || this.finished) return false;
    const e = this.session ? this.session.engine : this.engine;
    return e.pendingTransmit() < HIGH_WATER;
  }

  /** Runs `pump` soon (after the application's current call returns); nothing when a pump is
   * running (it writes what the application queued before it returns). */
  schedule() {
    if (this.scheduled || this.finished || this.pumping) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  /** Hands queued input to `target` until it refuses; pauses the socket while it does. */
  feed(target) {
    while (this.queued.length > 0) {
      try {
        target.feed(this.queued[0]);
      } catch (e) {
        if (payload(e) === 'full') {
          this.socket.pause();
          return;
        }
      }
      this.queued.shift();
    }
    if (!this.eof) this.socket.resume();
  }

  /** The drain order: input, events, output, deadline, close. */
  pump() {
    if (this.finished || this.pumping) return;
    this.pumping = true;
    try {
      if (this.session) {
        this.pumpSession();
      } else {
        this.pumpHttp();
        if (this.session) this.pumpSession();
      }
    } catch (e) {
      // A bug in the application (or a trap in the engine): this connection ends.
      console.error(`weft-engine: connection failed: ${e && e.stack ? e.stack : e}`);
      this.destroy();
    } finally {
      this.pumping = false;
    }
  }

  pumpHttp() {
    const c = this.engine;
    this.feed(c);
    if (this.eof && this.queued.length === 0 && !this.eofSent) {
      this.eofSent = true;
      c.receiveEof();
    }
    for (;;) {
      const ex = this.exchange;
      if (ex) {
        if (ex.res.done) {
          // The response is complete (the engine discards a body nobody read): the exchange
          // is over, the next request may come.
          this.exchange = null;
        } else if (ex.bodyEnded) {
          break; // the next request waits for this response (a poll would say `paused`)
        } else if (!ex.req.ondata || !this.writable()) {
          break; // the body stays in the engine until the application wants it
        }
      }
      let event;
      try {
        event = c.pollEvent(now());
      } catch (e) {
        payload(e); // the engine answered the error itself (when it still could) and closed
        break;
      }
      if (event.tag === 'request') {
        this.startExchange(event.val);
      } else if (event.tag === 'data') {
        if (ex && ex.req.ondata) ex.req.ondata(event.val);
      } else if (event.tag === 'end') {
        if (ex) ex.bodyEnded = true;
        if (ex && ex.req.onend) ex.req.onend(event.val);
      } else if (event.tag === 'upgraded') {
        this.startSession(event.val);
        return;
      } else {
        break; // need-data, paused, closed
      }
      this.feed(c);
    }
    let status = this.flush(c);
    const ex = this.exchange;
    if (ex && !ex.res.done && ex.res.ondrain && !this.socket.writableNeedDrain && status.pendingTransmit < HIGH_WATER) {
      const drain = ex.res.ondrain;
      ex.res.ondrain = null;
      drain();
      status = this.flush(c);
    }
    this.finish(c, status);
  }

  startExchange(head) {
    const req = new Request(head);
    const res = new Response(this, req);
    this.exchange = { req, res };
    try {
      this.app(req, res);
    } catch (e) {
      console.error(`weft-engine: the application failed: ${e && e.stack ? e.stack : e}`);
      if (!res.headSent) {
        res.full(500, [['Content-Type', 'text/plain; charset=utf-8']], 'internal server error\n');
      } else if (!res.done) {
        res.abort();
      }
    }
  }

  startSession(leftover) {
    const pending = this.pendingSession;
    this.pendingSession = null;
    if (!pending) {
      // A 101 sent without `res.websocket`: no protocol to hand the connection to.
      this.destroy();
      return;
    }
    this.exchange = null;
    // The 101 goes out whole before the session's first bytes (the socket buffers it).
    const rest = this.engine.takeTransmit(0xffffffff, instant());
    if (rest.length > 0) this.socket.write(rest);
    const engine = new websocket.Session(pending.config, instant());
    this.session = { engine, handler: pending.handler };
    this.session.api = new Session(this, engine);
    if (pending.handler.open) pending.handler.open(this.session.api);
    if (leftover.length > 0) this.queued.unshift(leftover);
    release(this.engine);
    this.engine = null;
  }

  pumpSession() {
    const s = this.session;
    const ws = s.engine;
    this.feed(ws);
    if (this.eof && this.queued.length === 0 && !this.eofSent) {
      this.eofSent = true;
      ws.receiveEof();
    }
    while (this.writable()) {
      let event;
      try {
        event = ws.pollEvent(instant());
      } catch (e) {
        payload(e); // a protocol error: the Close with its code is queued
        break;
      }
      if (event.tag === 'text') {
        s.handler.message(s.api, event.val, true);
      } else if (event.tag === 'binary') {
        s.handler.message(s.api, event.val, false);
      } else if (event.tag === 'close') {
        if (s.handler.close) s.handler.close(event.val.code, event.val.reason);
      } else if (event.tag === 'ping' || event.tag === 'pong') {
        // The engine answered the ping itself.
      } else {
        break; // need-data, closed
      }
      this.feed(ws);
    }
    this.finish(ws, this.flush(ws));
  }

  /** Writes the engine's output while the socket takes it (the engine keeps the rest, so its
   * send timeout sees a peer that stopped reading). Returns the engine's status after. */
  flush(e) {
    if (!this.socket.destroyed) {
      const at = instant();
      while (!this.socket.writableNeedDrain) {
        const chunk = e.takeTransmit(WRITE_SLICE, at);
        if (chunk.length === 0) break;
        this.socket.write(chunk);
        if (chunk.length < WRITE_SLICE) break; // that was all of it
      }
    }
    return e.status();
  }

  /** Closes once the engine is closed and its output written; else makes sure a timer fires
   * by the engine's next deadline. A timer that fires early is harmless (`handle-timeout`
   * acts only on deadlines that passed), so one is kept while it fires no later than needed:
   * no timer churn per request. */
  finish(e, status) {
    if (status.closed && status.pendingTransmit === 0n) {
      this.close();
      return;
    }
    const deadline = status.deadline;
    if (deadline === undefined || (this.timer && this.timerAt <= deadline)) return;
    if (this.timer) clearTimeout(this.timer);
    const waitNs = deadline - instant();
    const ms = waitNs <= 0n ? 0 : Number(waitNs / 1_000_000n) + 1;
    this.timerAt = deadline;
    this.timer = setTimeout(() => this.timeout(), Math.min(ms, 0x7fffffff));
  }

  timeout() {
    this.timer = null;
    this.timerAt = undefined;
    if (this.finished) return;
    if (this.session) this.session.engine.handleTimeout(instant());
    else this.engine.handleTimeout(now());
    this.pump();
  }

  /** The engine is done: half-close, keep reading (and discarding) a while so the peer gets
   * every byte before the connection goes. */
  close() {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    this.queued = [];
    this.socket.removeAllListeners('data');
    this.socket.on('data', () => {});
    this.socket.resume();
    this.socket.end();
    const linger = setTimeout(() => this.socket.destroy(), LINGER_MS);
    this.socket.once('close', () => clearTimeout(linger));
    this.socket.once('end', () => this.socket.destroy());
    this.dispose();
  }

  destroy() {
    if (!this.finished) {
      this.finished = true;
      if (this.timer) clearTimeout(this.timer);
      this.dispose();
    }
    this.socket.destroy();
  }

  dispose() {
    const ex = this.exchange;
    this.exchange = null;
    if (ex && ex.res.onclose) ex.res.onclose();
    if (this.session && this.session.handler.closed) this.session.handler.closed();
    release(this.engine);
    release(this.session && this.session.engine);
    this.engine = null;
    this.session = null;
  }
}

/**
 * A `net.Server` whose connections are driven by the engine. `app(req, res)` is called for
 * every request (see `Request` and `Response` above). `options.limits` overrides fields of the
 * engine's default limits (numbers or bigints; durations in nanoseconds).
 */
export function createServer(app, options = {}) {
  const limits = http.defaultLimits();
  for (const [key, value] of Object.entries(options.limits || {})) {
    if (!(key in limits)) throw new Error(`unknown limit ${key}`);
    limits[key] = BigInt(value);
  }
  return net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
    new Connection(socket, app, limits);
  });
}
