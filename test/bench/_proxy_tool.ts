// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The two ends of the proxy benchmark (test/bench/_proxy.ts), one script run
 * inside the benchmark's namespaces (`deno run -A _proxy_tool.ts MODE …`).
 *
 * `serve PORT`: an HTTP/1.1 server on kernel TCP (Deno.serve, 0.0.0.0):
 * `GET /bytes/N` streams N bytes, `PUT /sink` reads and counts its body,
 * `GET /stats` answers the bytes counted so far, `GET /small` answers "ok".
 *
 * The client modes talk to `--target ADDR:PORT`, directly (kernel TCP) or,
 * with `--socks HOST:PORT`, through a SOCKS5 CONNECT (RFC 1928, no
 * authentication), and print one JSON line:
 * - `download --conns C --seconds D`: C connections each GET an endless body;
 *   `{mbps}` over D seconds after a 1 s warm-up, counted as the bytes read.
 * - `upload --conns C --seconds D`: C connections each PUT an endless body;
 *   `{mbps}` from the server's count (`/stats`) before and after D seconds
 *   after a 1 s warm-up, so bytes sitting in socket buffers do not count.
 * - `rate --conns C --seconds D`: C workers each open a connection, GET
 *   /small with `Connection: close`, read the answer and close, in a loop;
 *   `{perSecond}`: completed connections per second.
 * - `latency --count N`: N GET /small one after another on one kept-alive
 *   connection; `{p50, p99}` in ms.
 * - `idle --count N --hold S`: opens N connections, each answering one GET
 *   /small (so it is established end to end), prints `{ready: N}` and holds
 *   them S seconds before exiting.
 * Every connection and read has a deadline (`--timeout`, default 20 s).
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

function say(obj: unknown): void {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(obj) + "\n"));
}

function parseHostPort(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  if (!m) throw new Error(`expected HOST:PORT, got "${text}"`);
  return { hostname: m[1] ?? m[2], port: Number(m[3]) };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no progress in ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** A connection with a read buffer. */
class Conn {
  #buf = new Uint8Array(0);
  constructor(readonly conn: Deno.TcpConn, readonly timeoutMs: number) {}

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await withTimeout(this.conn.read(chunk), this.timeoutMs, "read");
    if (n === null) throw new Error("connection closed by the other end");
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) await this.#fill();
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  /** Reads an HTTP response head; returns its Content-Length (−1 when absent). */
  async head(): Promise<number> {
    for (;;) {
      const text = dec.decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        this.#buf = this.#buf.slice(end + 4);
        if (!/^HTTP\/1\.1 200 /.test(text)) throw new Error(`answer: ${text.slice(0, 80)}`);
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
        return m ? Number(m[1]) : -1;
      }
      if (this.#buf.length > 16384) throw new Error("response head over 16 KiB");
      await this.#fill();
    }
  }

  /** GET `path` and read the whole (Content-Length) body. */
  async get(path: string, close = false): Promise<Uint8Array> {
    await this.write(
      enc.encode(`GET ${path} HTTP/1.1\r\nHost: b\r\n${close ? "Connection: close\r\n" : ""}\r\n`),
    );
    const len = await this.head();
    if (len < 0) throw new Error(`${path}: no Content-Length`);
    return await this.exactly(len);
  }

  async write(data: Uint8Array): Promise<void> {
    for (let off = 0; off < data.length;) {
      off += await withTimeout(this.conn.write(data.subarray(off)), this.timeoutMs, "write");
    }
  }

  /** Counts raw bytes as they arrive until `stop()` is true; already buffered ones first. */
  async drain(count: (n: number) => void, stop: () => boolean): Promise<void> {
    count(this.#buf.length);
    this.#buf = new Uint8Array(0);
    const chunk = new Uint8Array(262144);
    while (!stop()) {
      const n = await withTimeout(this.conn.read(chunk), this.timeoutMs, "read");
      if (n === null) throw new Error("download ended early");
      count(n);
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed
    }
  }
}

/** Opens a connection to `target`, through the SOCKS5 server `socks` when given. */
async function open(
  target: { hostname: string; port: number },
  socks: { hostname: string; port: number } | null,
  timeoutMs: number,
): Promise<Conn> {
  const raw = await withTimeout(
    Deno.connect(socks ?? target),
    timeoutMs,
    `connect to ${socks ? "the SOCKS server" : target.hostname}`,
  );
  raw.setNoDelay(true);
  const c = new Conn(raw, timeoutMs);
  if (!socks) return c;
  try {
    await c.write(Uint8Array.of(5, 1, 0));
    const m = await c.exactly(2);
    if (m[0] !== 5 || m[1] !== 0) throw new Error(`SOCKS method answer ${m[0]} ${m[1]}`);
    const v4 = target.hostname.split(".").map(Number);
    if (v4.length !== 4) throw new Error("the benchmark targets IPv4 addresses only");
    await c.write(Uint8Array.of(5, 1, 0, 1, ...v4, target.port >> 8, target.port & 255));
    const r = await c.exactly(4);
    if (r[1] !== 0) throw new Error(`SOCKS CONNECT answered 0x${r[1].toString(16)}`);
    await c.exactly(r[3] === 4 ? 18 : 6);
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function serve(port: number): void {
  const block = new Uint8Array(65536);
  crypto.getRandomValues(block);
  let received = 0;
  Deno.serve({
    hostname: "0.0.0.0",
    port,
    onListen: () => say({ listening: port }),
    onError: () => new Response("error\n", { status: 500 }),
  }, async (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "GET" && path === "/small") return new Response("ok\n");
    if (req.method === "GET" && path === "/stats") return new Response(`${received}\n`);
    const m = /^\/bytes\/(\d+)$/.exec(path);
    if (req.method === "GET" && m) {
      let left = Number(m[1]);
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(ctl) {
            if (left <= 0) return ctl.close();
            const n = Math.min(left, block.length);
            left -= n;
            ctl.enqueue(block.slice(0, n));
          },
        }),
      );
    }
    if (req.method === "PUT" && path === "/sink" && req.body) {
      try {
        for await (const chunk of req.body) received += chunk.length;
      } catch {
        // the client stopped
      }
      return new Response(`${received}\n`);
    }
    return new Response("not found\n", { status: 404 });
  });
}

interface ClientOpts {
  target: { hostname: string; port: number };
  socks: { hostname: string; port: number } | null;
  conns: number;
  seconds: number;
  count: number;
  hold: number;
  timeoutMs: number;
}

async function download(o: ClientOpts): Promise<void> {
  let bytes = 0, stop = false;
  const conns = await Promise.all(
    Array.from({ length: o.conns }, () => open(o.target, o.socks, o.timeoutMs)),
  );
  const runs = conns.map(async (c) => {
    await c.write(enc.encode(`GET /bytes/${2 ** 45} HTTP/1.1\r\nHost: b\r\n\r\n`));
    await c.head();
    await c.drain((n) => (bytes += n), () => stop);
  });
  const failed = Promise.all(runs).then(() => {});
  await Promise.race([sleep(1000), failed]);
  const b0 = bytes, t0 = performance.now();
  await Promise.race([sleep(o.seconds * 1000), failed]);
  const b1 = bytes, t1 = performance.now();
  stop = true;
  for (const c of conns) c.close();
  say({ mbps: (b1 - b0) * 8 / ((t1 - t0) / 1000) / 1e6, bytes: b1 - b0 });
}

async function upload(o: ClientOpts): Promise<void> {
  const stats = async () => {
    const c = await open(o.target, o.socks, o.timeoutMs);
    try {
      return Number(dec.decode(await c.get("/stats", true)).trim());
    } finally {
      c.close();
    }
  };
  let stop = false;
  const block = new Uint8Array(65536);
  crypto.getRandomValues(block);
  const conns = await Promise.all(
    Array.from({ length: o.conns }, () => open(o.target, o.socks, o.timeoutMs)),
  );
  const runs = conns.map(async (c) => {
    await c.write(
      enc.encode(`PUT /sink HTTP/1.1\r\nHost: b\r\nContent-Length: ${2 ** 45}\r\n\r\n`),
    );
    while (!stop) await c.write(block);
  });
  const failed = Promise.all(runs).then(() => {});
  await Promise.race([sleep(1000), failed]);
  const s0 = await stats(), t0 = performance.now();
  await Promise.race([sleep(o.seconds * 1000), failed]);
  const s1 = await stats(), t1 = performance.now();
  stop = true;
  for (const c of conns) c.close();
  await Promise.allSettled(runs);
  say({ mbps: (s1 - s0) * 8 / ((t1 - t0) / 1000) / 1e6, bytes: s1 - s0 });
}

async function rate(o: ClientOpts): Promise<void> {
  let done = 0;
  const deadline = performance.now() + o.seconds * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: o.conns }, async () => {
    while (performance.now() < deadline) {
      const c = await open(o.target, o.socks, o.timeoutMs);
      try {
        await c.get("/small", true);
      } finally {
        c.close();
      }
      done++;
    }
  }));
  say({ perSecond: done / ((performance.now() - t0) / 1000), connections: done });
}

async function latency(o: ClientOpts): Promise<void> {
  const c = await open(o.target, o.socks, o.timeoutMs);
  const ms: number[] = [];
  try {
    for (let i = 0; i < 20; i++) await c.get("/small");
    for (let i = 0; i < o.count; i++) {
      const t0 = performance.now();
      await c.get("/small");
      ms.push(performance.now() - t0);
    }
  } finally {
    c.close();
  }
  ms.sort((a, b) => a - b);
  say({ p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), count: ms.length });
}

async function idle(o: ClientOpts): Promise<void> {
  const conns: Conn[] = [];
  // 50 at a time: the SOCKS listener's backlog and the peer's stay small.
  for (let i = 0; i < o.count; i += 50) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(50, o.count - i) },
        () =>
          open(o.target, o.socks, o.timeoutMs).then(async (c) => {
            await c.get("/small");
            return c;
          }),
      ),
    );
    conns.push(...batch);
  }
  say({ ready: conns.length });
  await sleep(o.hold * 1000);
  for (const c of conns) c.close();
}

async function main(args: string[]): Promise<number> {
  const [mode, ...rest] = args;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    if (!rest[i].startsWith("--") || rest[i + 1] === undefined) {
      throw new Error(`bad argument "${rest[i]}"`);
    }
    flags.set(rest[i].slice(2), rest[i + 1]);
  }
  if (mode === "serve") {
    serve(Number(flags.get("port") ?? "8080"));
    return await new Promise<number>(() => {});
  }
  const target = flags.get("target");
  if (!target) throw new Error("--target ADDR:PORT is required");
  const socks = flags.get("socks");
  const o: ClientOpts = {
    target: parseHostPort(target),
    socks: socks ? parseHostPort(socks) : null,
    conns: Number(flags.get("conns") ?? "1"),
    seconds: Number(flags.get("seconds") ?? "5"),
    count: Number(flags.get("count") ?? "1000"),
    hold: Number(flags.get("hold") ?? "30"),
    timeoutMs: Number(flags.get("timeout") ?? "20000"),
  };
  const modes: Record<string, (o: ClientOpts) => Promise<void>> = {
    download,
    upload,
    rate,
    latency,
    idle,
  };
  const fn = modes[mode];
  if (!fn) throw new Error(`unknown mode "${mode}" (serve, ${Object.keys(modes).join(", ")})`);
  await fn(o);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    Deno.stderr.writeSync(enc.encode(`_proxy_tool: ${e instanceof Error ? e.message : e}\n`));
    Deno.exit(1);
  }
}
