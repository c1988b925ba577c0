// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for uapi/server.ts with a fake handler: permissions, stale and live
 * sockets, several operations per connection, split writes, probes, slow
 * clients, eviction, long lines, deletion watch, inherited fd.
 */
import assert from "node:assert/strict";
import { UapiServer } from "../../uapi/server.ts";
import { FakeHandler } from "./_fake_handler.ts";

const enc = new TextEncoder();

// ---- socket server ----

function ifname(): string {
  return "gtu" + String(Math.floor(Math.random() * 1e9)).padStart(9, "0");
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads until `replies` blank-line-terminated replies arrived or EOF. */
async function readReplies(conn: Deno.Conn, replies: number): Promise<string> {
  const dec = new TextDecoder();
  const buf = new Uint8Array(65536);
  let text = "";
  while ((text.match(/\n\n/g) ?? []).length < replies) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

async function exchange(path: string, chunks: string[], replies = 1): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    for (const c of chunks) {
      await conn.write(enc.encode(c));
      await new Promise((r) => setTimeout(r, 5));
    }
    return await withTimeout(readReplies(conn, replies), 5000, "reply");
  } finally {
    conn.close();
  }
}

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "gtu-uapi-" });
}

Deno.test("UapiServer.listen() creates dir 0755 and socket 0700, close() unlinks", async () => {
  const root = await tempDir();
  const dir = `${root}/run/wireguard`;
  const iface = ifname();
  const server = await UapiServer.listen({ iface, handle: new FakeHandler(), dir });
  try {
    assert.equal(server.path, `${dir}/${iface}.sock`);
    assert.equal(Deno.statSync(dir).mode! & 0o777, 0o755);
    const st = Deno.lstatSync(server.path);
    assert.ok(st.isSocket);
    assert.equal(st.mode! & 0o777, 0o700);
  } finally {
    server.close();
    await withTimeout(server.closed, 2000, "closed");
    assert.throws(() => Deno.lstatSync(server.path));
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("UapiServer serves several operations per connection and split writes", async () => {
  const dir = await tempDir();
  const handler = new FakeHandler();
  const server = await UapiServer.listen({ iface: ifname(), handle: handler, dir });
  try {
    const out = await exchange(
      server.path,
      ["get=", "1\n", "\nset=1\nlisten_", "port=2\n", "\n", "get=1\n\n"],
      3,
    );
    assert.equal(out, "listen_port=1\nerrno=0\n\nerrno=0\n\nlisten_port=1\nerrno=0\n\n");
    assert.deepEqual(handler.log, ["get", "set", "listen_port=2", "end", "get"]);
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer tolerates zero-byte probe connections", async () => {
  const dir = await tempDir();
  const server = await UapiServer.listen({ iface: ifname(), handle: new FakeHandler(), dir });
  try {
    for (let i = 0; i < 5; i++) {
      const probe = await Deno.connect({ transport: "unix", path: server.path });
      probe.close();
    }
    assert.equal(await exchange(server.path, ["get=1\n\n"]), "listen_port=1\nerrno=0\n\n");
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer slow clients do not block a concurrent get", async () => {
  const dir = await tempDir();
  const handler = new FakeHandler();
  const server = await UapiServer.listen({ iface: ifname(), handle: handler, dir });
  const slow: Deno.Conn[] = [];
  try {
    for (const partial of ["", "get=", "set=1\nlisten_port=3\n", "set=1\nlisten_po"]) {
      const c = await Deno.connect({ transport: "unix", path: server.path });
      if (partial) await c.write(enc.encode(partial));
      slow.push(c);
    }
    await new Promise((r) => setTimeout(r, 20));
    const out = await withTimeout(exchange(server.path, ["get=1\n\n"]), 2000, "concurrent get");
    assert.equal(out, "listen_port=1\nerrno=0\n\n");
    // The unfinished set has not been applied (it is applied at its blank line).
    assert.ok(!handler.log.includes("listen_port=3"));
    await slow[2].write(enc.encode("\n"));
    assert.equal(await withTimeout(readReplies(slow[2], 1), 2000, "slow set"), "errno=0\n\n");
    assert.ok(handler.log.includes("listen_port=3"));
  } finally {
    for (const c of slow) c.close();
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer drops the longest idle connection beyond maxConnections", async () => {
  const dir = await tempDir();
  const server = await UapiServer.listen({
    iface: ifname(),
    handle: new FakeHandler(),
    dir,
    maxConnections: 2,
  });
  const idle: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      idle.push(await Deno.connect({ transport: "unix", path: server.path }));
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(await exchange(server.path, ["get=1\n\n"]), "listen_port=1\nerrno=0\n\n");
    // The first idle connection was evicted: it reads EOF.
    const buf = new Uint8Array(16);
    assert.equal(await withTimeout(idle[0].read(buf), 2000, "evicted read"), null);
  } finally {
    for (const c of idle) c.close();
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer answers a too-long set line with errno=-5 and closes", async () => {
  const dir = await tempDir();
  const server = await UapiServer.listen({ iface: ifname(), handle: new FakeHandler(), dir });
  try {
    const out = await exchange(server.path, ["set=1\nk=" + "x".repeat(70000) + "\n\nget=1\n\n"], 2);
    assert.equal(out, "errno=-5\n\n");
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer.listen() replaces a stale socket and refuses a live one", async () => {
  const dir = await tempDir();
  const iface = ifname();
  const path = `${dir}/${iface}.sock`;
  // A stale socket: the inode of a closed listener, kept alive by a hard link.
  const l = Deno.listen({ transport: "unix", path: `${dir}/tmp.sock` });
  Deno.linkSync(`${dir}/tmp.sock`, path);
  l.close();
  assert.ok(Deno.lstatSync(path).isSocket);
  const server = await UapiServer.listen({ iface, handle: new FakeHandler(), dir });
  try {
    assert.equal(await exchange(path, ["get=1\n\n"]), "listen_port=1\nerrno=0\n\n");
    await assert.rejects(
      UapiServer.listen({ iface, handle: new FakeHandler(), dir }),
      /unix socket in use/,
    );
    // The live socket is untouched.
    assert.equal(await exchange(path, ["get=1\n\n"]), "listen_port=1\nerrno=0\n\n");
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer.closed resolves when the socket file is deleted", async () => {
  const dir = await tempDir();
  const server = await UapiServer.listen({ iface: ifname(), handle: new FakeHandler(), dir });
  try {
    let done = false;
    server.closed.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(done, false);
    Deno.removeSync(server.path);
    await withTimeout(server.closed, 3000, "closed after unlink");
    await assert.rejects(Deno.connect({ transport: "unix", path: server.path }));
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer.closed ignores other files in the directory", async () => {
  const dir = await tempDir();
  const server = await UapiServer.listen({ iface: ifname(), handle: new FakeHandler(), dir });
  try {
    let done = false;
    server.closed.then(() => (done = true));
    await Deno.writeTextFile(`${dir}/other.sock`, "x");
    await Deno.remove(`${dir}/other.sock`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(done, false);
    assert.equal(await exchange(server.path, ["get=1\n\n"]), "listen_port=1\nerrno=0\n\n");
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A directory watch whose events come from `next` (Deno.FsWatcher's shape, nothing else). */
function fakeWatcher(next: () => Promise<IteratorResult<Deno.FsEvent>>): Deno.FsWatcher {
  return {
    close() {},
    [Symbol.dispose]() {},
    [Symbol.asyncIterator]: () => ({ next }),
  } as unknown as Deno.FsWatcher;
}

/** A server on `dir` with the watch `watch`, and the error lines it logs. */
async function listenWatching(
  dir: string,
  watch: (dir: string) => Deno.FsWatcher,
): Promise<{ server: UapiServer; errors: string[] }> {
  const errors: string[] = [];
  const logger = { verbose() {}, error: (m: string) => errors.push(m) };
  const server = await UapiServer.listen({
    iface: ifname(),
    handle: new FakeHandler(),
    dir,
    logger,
    watch,
  });
  return { server, errors };
}

for (
  const [what, watch] of [
    // No inotify instance left (fs.inotify.max_user_instances): watchFs throws.
    ["cannot be had", (): Deno.FsWatcher => {
      throw new Error("Too many open files (os error 24)");
    }],
    // The watch fails later (an overflowed event queue, say).
    ["fails later", () => fakeWatcher(() => Promise.reject(new Error("inotify queue overflow")))],
  ] as const
) {
  Deno.test(`UapiServer keeps serving when the directory watch ${what}; polls for the socket`, async () => {
    const dir = await tempDir();
    const { server, errors } = await listenWatching(dir, watch);
    try {
      let done = false;
      server.closed.then(() => (done = true));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(done, false, "a failed watch alone does not stop the server");
      assert.equal(errors.length, 1, errors.join("; "));
      assert.match(errors[0], new RegExp(`Cannot watch ${dir} .*every 1 s instead`));
      assert.equal(await exchange(server.path, ["get=1\n\n"]), "listen_port=1\nerrno=0\n\n");
      Deno.removeSync(server.path);
      await withTimeout(server.closed, 3000, "closed after unlink, found by polling");
    } finally {
      server.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("UapiServer: a watch that ends with the socket gone (its directory deleted) closes without an error", async () => {
  const dir = await tempDir();
  let end = () => {};
  const ended = () =>
    new Promise<IteratorResult<Deno.FsEvent>>((resolve) =>
      end = () => resolve({ done: true, value: undefined })
    );
  const { server, errors } = await listenWatching(dir, () => fakeWatcher(ended));
  try {
    Deno.removeSync(server.path);
    end();
    await withTimeout(server.closed, 500, "closed when the watch ended");
    assert.deepEqual(errors, []);
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("UapiServer.listen() rejects interface names with a slash", async () => {
  await assert.rejects(
    UapiServer.listen({ iface: "a/b", handle: new FakeHandler(), dir: "/nonexistent" }),
    TypeError,
  );
});

/** Opens a listening AF_UNIX socket with libc, as wireguard-go's parent does for WG_UAPI_FD. */
function listeningFd(path: string): number {
  const lib = Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    listen: { parameters: ["i32", "i32"], result: "i32" },
  });
  try {
    const fd = lib.symbols.socket(1, /* AF_UNIX */ 1, /* SOCK_STREAM */ 0);
    assert.ok(fd >= 0);
    const addr = new Uint8Array(110);
    new DataView(addr.buffer).setUint16(0, 1, true);
    addr.set(enc.encode(path), 2);
    assert.equal(lib.symbols.bind(fd, addr, addr.length), 0);
    assert.equal(lib.symbols.listen(fd, 16), 0);
    return fd;
  } finally {
    lib.close();
  }
}

Deno.test("UapiServer.fromFd() serves an inherited listening socket", async () => {
  const dir = await tempDir();
  const iface = ifname();
  const fd = listeningFd(`${dir}/${iface}.sock`);
  const handler = new FakeHandler();
  const server = await UapiServer.fromFd(fd, { iface, handle: handler, dir });
  try {
    const probe = await Deno.connect({ transport: "unix", path: server.path });
    probe.close();
    const out = await exchange(server.path, ["get=1\n", "\nset=1\na=1\n\n"], 2);
    assert.equal(out, "listen_port=1\nerrno=0\n\nerrno=0\n\n");
    Deno.removeSync(server.path);
    await withTimeout(server.closed, 3000, "closed after unlink");
  } finally {
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
