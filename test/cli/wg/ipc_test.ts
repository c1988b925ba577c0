// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of the UAPI client (no root): the get parser's acceptance rules,
 * the set request's field order, discovery in a temporary socket directory
 * (stale sockets unlinked, non-sockets ignored) and errno passing.
 */
import assert from "node:assert/strict";
import {
  formatSet,
  getDevice,
  GetParser,
  type IpcContext,
  listDevices,
  setDevice,
  splitEndpoint,
  userspaceGetDevice,
  userspaceSetDevice,
} from "../../../cli/wg/ipc.ts";
import {
  newDevice,
  newPeer,
  WGDEVICE_HAS_FWMARK,
  WGDEVICE_HAS_LISTEN_PORT,
  WGDEVICE_HAS_PRIVATE_KEY,
  WGDEVICE_REPLACE_PEERS,
  WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_HAS_PRESHARED_KEY,
  WGPEER_REMOVE_ME,
  WGPEER_REPLACE_ALLOWEDIPS,
} from "../../../cli/wg/containers.ts";
import { fallbackResolver } from "../../../cli/wg/resolve.ts";
import { FakeDaemon, staticDaemon } from "./_fake_daemon.ts";

const H1 = "01".repeat(32);
const H2 = "02".repeat(32);

async function parse(lines: string) {
  const p = new GetParser("gtwg0", fallbackResolver());
  for (const line of lines.match(/[^\n]*\n|[^\n]+$/g) ?? []) {
    if ((await p.line(line)) !== null) break;
  }
  return { ret: p.result ?? p.end(), device: p.device };
}

Deno.test("GetParser accepts a reply only with errno=0 before the blank line", async () => {
  assert.equal((await parse("listen_port=1\nerrno=0\n\n")).ret, 0);
  assert.equal((await parse("listen_port=1\n\n")).ret, -71);
  assert.equal((await parse("listen_port=1\nerrno=0\n")).ret, -71);
  assert.equal((await parse("errno=5\n\n")).ret, -5);
  assert.equal((await parse("errno=-5\n\n")).ret, -71);
  assert.equal((await parse("bad line\nerrno=0\n\n")).ret, -71);
  assert.equal((await parse("listen_port=65536\nerrno=0\n\n")).ret, -71);
  assert.equal((await parse("unknown=1\nerrno=0\n\n")).ret, 0);
  assert.equal((await parse("a=\0\nerrno=0\n\n")).ret, -71);
});

Deno.test("GetParser reads device keys only before the first peer", async () => {
  const { ret, device } = await parse(
    `listen_port=5\npublic_key=${H1}\nlisten_port=6\npreshared_key=${"0".repeat(64)}\n` +
      `allowed_ip=10.0.0.0/8\nallowed_ip=1.2.3.4/256\nrx_bytes=99999999999999999999999\n` +
      `public_key=${H2}\npreshared_key=${H1}\nendpoint=[fe80::1%1]:5\nerrno=0\n\n`,
  );
  assert.equal(ret, 0);
  assert.equal(device.listenPort, 5);
  assert.equal(device.peers.length, 2);
  assert.equal(device.peers[0].flags & WGPEER_HAS_PRESHARED_KEY, 0);
  assert.deepEqual(device.peers[0].allowedIps.map((a) => a.cidr), [8, 0]);
  assert.equal(device.peers[0].rxBytes, (1n << 64n) - 1n);
  assert.ok(device.peers[1].flags & WGPEER_HAS_PRESHARED_KEY);
  assert.equal(device.peers[1].endpoint?.scopeId, 1);
});

Deno.test("GetParser signals an unresolvable endpoint with +ENETUNREACH", async () => {
  const { ret } = await parse(`public_key=${H1}\nendpoint=[::1%lo]:1\nerrno=0\n\n`);
  assert.equal(ret, 101);
});

Deno.test("splitEndpoint() splits at the last colon or after the bracket", () => {
  assert.deepEqual(splitEndpoint("::1:5"), { host: "::1", port: "5" });
  assert.deepEqual(splitEndpoint("[::1]:5"), { host: "::1", port: "5" });
  assert.deepEqual(splitEndpoint("[::1]:5:6"), { host: "::1", port: "5:6" });
  assert.equal(splitEndpoint("[::1]"), null);
  assert.equal(splitEndpoint("1.2.3.4:"), null);
  assert.equal(splitEndpoint(""), null);
});

Deno.test("formatSet() writes wg's field order", () => {
  const dev = newDevice();
  dev.flags = WGDEVICE_HAS_PRIVATE_KEY | WGDEVICE_HAS_LISTEN_PORT | WGDEVICE_HAS_FWMARK |
    WGDEVICE_REPLACE_PEERS;
  dev.listenPort = 51820;
  dev.fwmark = 0xffffffff;
  const a = newPeer();
  a.publicKey.fill(1);
  a.flags = WGPEER_REMOVE_ME | WGPEER_HAS_PRESHARED_KEY;
  const b = newPeer();
  b.publicKey.fill(2);
  b.flags = WGPEER_HAS_PRESHARED_KEY | WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL |
    WGPEER_REPLACE_ALLOWEDIPS;
  b.persistentKeepalive = 0;
  b.endpoint = { family: 4, addr: new Uint8Array([10, 0, 0, 1]), port: 1, scopeId: 0 };
  b.allowedIps.push({ family: 4, addr: new Uint8Array([10, 0, 0, 0]), cidr: 8, remove: true });
  dev.peers.push(a, b);
  assert.equal(
    formatSet(dev, fallbackResolver()),
    `set=1\nprivate_key=${
      "00".repeat(32)
    }\nlisten_port=51820\nfwmark=4294967295\nreplace_peers=true\n` +
      `public_key=${H1}\nremove=true\n` +
      `public_key=${H2}\npreshared_key=${"00".repeat(32)}\nendpoint=10.0.0.1:1\n` +
      `persistent_keepalive_interval=0\nreplace_allowed_ips=true\nallowed_ip=-10.0.0.0/8\n\n`,
  );
});

Deno.test("listDevices() keeps connectable sockets and unlinks refused ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
  const ctx: IpcContext = { socketDir: dir, resolver: fallbackResolver() };
  const live = new FakeDaemon(dir, "gtwg0", staticDaemon("listen_port=3\n"));
  try {
    await Deno.writeTextFile(`${dir}/file.sock`, "");
    await Deno.writeTextFile(`${dir}/.sock`, "");
    const stale = Deno.listen({ transport: "unix", path: `${dir}/stale.sock` });
    await Deno.link(`${dir}/stale.sock`, `${dir}/keep`);
    stale.close();
    await Deno.rename(`${dir}/keep`, `${dir}/stale.sock`);
    assert.deepEqual(await listDevices(ctx), ["gtwg0"]);
    await assert.rejects(Deno.stat(`${dir}/stale.sock`), Deno.errors.NotFound);
    assert.deepEqual(await listDevices({ ...ctx, socketDir: `${dir}/missing` }), []);
    assert.equal(await listDevices({ ...ctx, socketDir: `${dir}/file.sock` }), 20);
    const got = await getDevice(ctx, "gtwg0");
    assert.equal(got.ret, 0);
    assert.equal(got.device?.listenPort, 3);
    const dev = newDevice();
    dev.name = "gtwg0";
    assert.equal(await setDevice(ctx, dev), 0);
    live.script = staticDaemon("", -22);
    assert.equal(await setDevice(ctx, dev), -22);
    live.script = () => "errno=0\n";
    assert.equal(await setDevice(ctx, dev), -71);
    assert.deepEqual(live.take().slice(-1), ["set=1\n\n"]);
  } finally {
    await live.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("getDevice() reports the kernel path's errors when no socket answers", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
  try {
    const ctx: IpcContext = { socketDir: dir, resolver: fallbackResolver() };
    assert.equal((await getDevice(ctx, "x".repeat(16))).ret, -36);
    let moduleLoaded = false;
    try {
      moduleLoaded = Deno.statSync("/sys/module/wireguard").isDirectory;
    } catch {
      // absent
    }
    const r = await getDevice(ctx, "gtwgnonexist");
    assert.equal(r.ret, moduleLoaded ? -19 : -93);
    assert.equal(r.device, null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("userspaceGetDevice()/userspaceSetDevice(): ETIMEDOUT after timeoutMs; keepStale keeps a refused socket", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
  const ctx: IpcContext = { socketDir: dir, resolver: fallbackResolver(), timeoutMs: 100 };
  // Accepts and reads, never answers.
  const mute = Deno.listen({ transport: "unix", path: `${dir}/mute.sock` });
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of mute) held.push(conn);
  })();
  try {
    assert.deepEqual(await userspaceGetDevice(ctx, "mute"), { ret: -110, device: null });
    const dev = newDevice();
    dev.name = "mute";
    assert.equal(await userspaceSetDevice(ctx, dev), -110);
    const stale = Deno.listen({ transport: "unix", path: `${dir}/stale.sock` });
    await Deno.link(`${dir}/stale.sock`, `${dir}/keep`);
    stale.close();
    await Deno.rename(`${dir}/keep`, `${dir}/stale.sock`);
    assert.equal((await userspaceGetDevice({ ...ctx, keepStale: true }, "stale")).ret, -111);
    assert.ok((await Deno.stat(`${dir}/stale.sock`)).isSocket);
    assert.equal((await userspaceGetDevice(ctx, "stale")).ret, -111);
    await assert.rejects(Deno.stat(`${dir}/stale.sock`), Deno.errors.NotFound);
    assert.equal((await userspaceGetDevice(ctx, "missing")).ret, -2);
  } finally {
    mute.close();
    await serving.catch(() => {});
    for (const c of held) c.close();
    await Deno.remove(dir, { recursive: true });
  }
});
