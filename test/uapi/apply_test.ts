// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for uapi/apply.ts against an in-memory Device: every key's
 * wireguard-go semantics (device/uapi.go IpcSetOperation / IpcGetOperation),
 * non-atomic errors, dummy sections and the per-peer post-config.
 */
import assert from "node:assert/strict";
import { Device } from "../../src/device.ts";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { clampPrivateKey, generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { ERRNO, UapiError } from "../../uapi/errors.ts";
import { deviceHandler, ipcGet, ipcSet, IpcSetSession } from "../../uapi/apply.ts";
import { formatKeyHex, parseLines } from "../../uapi/protocol.ts";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";

const rng = seededRng(7);

function key(): { priv: string; pub: string; privBytes: Uint8Array; pubBytes: Uint8Array } {
  const privBytes = generatePrivateKey(rng);
  const pubBytes = publicKey(privBytes);
  return { priv: formatKeyHex(privBytes), pub: formatKeyHex(pubBytes), privBytes, pubBytes };
}

function setup(v4 = "192.0.2.1") {
  const clock = new FakeClock();
  const net = new MemoryNetwork(clock);
  const bind = net.createBind({ v4, v6: "2001:db8::1" });
  const device = new Device({ tun: new MemoryTun(), bind, clock, rng, name: "gtutest" });
  return { clock, net, bind, device };
}

/** The get reply as a list of "key=value" strings. */
function get(device: Device): string[] {
  return parseLines(ipcGet(device)).map(([k, v]) => `${k}=${v}`);
}

function set(device: Device, ...lines: string[]): UapiError | null {
  return ipcSet(device, lines.join("\n") + "\n\n");
}

function peerBlock(pub: string, extra: Partial<Record<string, string | string[]>> = {}): string[] {
  const out = [
    `public_key=${pub}`,
    `preshared_key=${extra.preshared_key ?? "0".repeat(64)}`,
    "protocol_version=1",
  ];
  if (extra.endpoint) out.push(`endpoint=${extra.endpoint}`);
  out.push(
    "last_handshake_time_sec=0",
    "last_handshake_time_nsec=0",
    `tx_bytes=${extra.tx_bytes ?? 0}`,
    "rx_bytes=0",
    `persistent_keepalive_interval=${extra.persistent_keepalive_interval ?? 0}`,
  );
  for (const ip of (extra.allowed_ip as string[] | undefined) ?? []) out.push(`allowed_ip=${ip}`);
  return out;
}

Deno.test("ipcGet() of a fresh device is empty", () => {
  const { device } = setup();
  assert.equal(ipcGet(device), "");
  device.close();
});

Deno.test("ipcSet() private_key is clamped; all zeros clears it", () => {
  const { device } = setup();
  const raw = new Uint8Array(32).fill(0xff);
  assert.equal(set(device, `private_key=${formatKeyHex(raw).toUpperCase()}`), null);
  assert.deepEqual(get(device), [`private_key=${formatKeyHex(clampPrivateKey(raw.slice()))}`]);
  assert.equal(set(device, `private_key=${"0".repeat(64)}`), null);
  assert.deepEqual(get(device), []);
  for (const bad of ["", "00", "0".repeat(63), "0".repeat(65), "g".repeat(64)]) {
    assert.equal(set(device, `private_key=${bad}`)?.errno, ERRNO.EINVAL, bad);
  }
  device.close();
});

Deno.test("ipcSet() private_key equal to a peer's key removes that peer", () => {
  const { device } = setup();
  const a = key(), b = key();
  assert.equal(set(device, `public_key=${a.pub}`, `public_key=${b.pub}`), null);
  assert.equal(device.peerCount, 2);
  assert.equal(set(device, `private_key=${a.priv}`), null);
  assert.equal(device.peerCount, 1);
  assert.ok(device.lookupPeer(b.pubBytes));
  device.close();
});

Deno.test("ipcSet() listen_port and fwmark: decimal only, shown when non-zero", () => {
  const { device } = setup();
  assert.equal(set(device, "listen_port=51820", "fwmark=4660"), null);
  assert.deepEqual(get(device), ["listen_port=51820", "fwmark=4660"]);
  assert.equal(set(device, "fwmark=0x10")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, "fwmark=4294967296")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, "listen_port=65536")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, "listen_port=-1")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, "listen_port=0", "fwmark=0"), null);
  assert.deepEqual(get(device), []);
  device.close();
});

Deno.test("ipcSet() listen_port in use is EADDRINUSE and leaves port 0", () => {
  const { device, net } = setup();
  const other = new Device({
    tun: new MemoryTun(),
    bind: net.createBind({ v4: "192.0.2.1", v6: "2001:db8::1" }),
    clock: net.clock,
    rng,
  });
  assert.equal(set(device, "listen_port=51820"), null);
  assert.equal(set(other, "listen_port=51821"), null);
  device.up();
  other.up();
  assert.equal(device.listenPort, 51820);
  const err = set(other, "listen_port=51820", "fwmark=1");
  assert.equal(err?.errno, ERRNO.EADDRINUSE);
  assert.equal(other.listenPort, 0);
  assert.equal(other.fwmark, 0, "the line after the failure is not applied");
  device.close();
  other.close();
});

Deno.test("ipcSet() device keys after public_key are invalid peer keys; earlier lines stay", () => {
  const { device } = setup();
  const a = key();
  const err = set(device, "listen_port=1", `public_key=${a.pub}`, "listen_port=2");
  assert.ok(err instanceof UapiError);
  assert.equal(err.errno, ERRNO.EINVAL);
  assert.match(err.message, /invalid UAPI peer key: listen_port/);
  assert.equal(device.listenPort, 1);
  assert.equal(device.peerCount, 1, "the peer was created before the failing line");
  device.close();
});

Deno.test("ipcSet() unknown and device-section protocol_version keys are EINVAL", () => {
  const { device } = setup();
  assert.match(set(device, "bogus=1")!.message, /invalid UAPI device key: bogus/);
  assert.match(set(device, "protocol_version=1")!.message, /invalid UAPI device key/);
  assert.match(set(device, "LISTEN_PORT=1")!.message, /invalid UAPI device key/);
  assert.match(set(device, " listen_port=1")!.message, /invalid UAPI device key/);
  const a = key();
  assert.equal(set(device, `public_key=${a.pub}`, "protocol_version=1"), null);
  assert.equal(set(device, `public_key=${a.pub}`, "protocol_version=2")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, `public_key=${a.pub}`, "protocol_version=01")?.errno, ERRNO.EINVAL);
  assert.match(set(device, `public_key=${a.pub}`, "bogus=1")!.message, /invalid UAPI peer key/);
  device.close();
});

Deno.test("ipcSet() line without '=' is EPROTO; CR before LF is dropped", () => {
  const { device } = setup();
  assert.equal(ipcSet(device, "listen_port=7\nnoequals\nfwmark=1\n\n")?.errno, ERRNO.EPROTO);
  assert.equal(device.listenPort, 7);
  assert.equal(device.fwmark, 0);
  assert.equal(ipcSet(device, "listen_port=8\r\n\r\nfwmark=1\n"), null);
  assert.equal(device.listenPort, 8);
  assert.equal(device.fwmark, 0, "nothing after the blank line");
  device.close();
});

Deno.test("ipcSet() a 64 KiB line is EIO after finishing the last peer", () => {
  const { device } = setup();
  assert.equal(ipcSet(device, "listen_port=9\nx=" + "y".repeat(70000) + "\n")?.errno, ERRNO.EIO);
  assert.equal(device.listenPort, 9);
  device.close();
});

Deno.test("ipcSet() full peer, get order and insertion order of peers", () => {
  const { device } = setup();
  const a = key(), b = key(), c = key();
  const psk = "11".repeat(32);
  assert.equal(
    set(
      device,
      `private_key=${a.priv}`,
      "listen_port=51820",
      `public_key=${c.pub}`,
      `public_key=${b.pub}`,
      `preshared_key=${psk}`,
      "endpoint=[fd00::1]:51820",
      "persistent_keepalive_interval=25",
      "replace_allowed_ips=true",
      "allowed_ip=10.0.0.1/24",
      "allowed_ip=fd00::/64",
    ),
    null,
  );
  assert.deepEqual(get(device), [
    `private_key=${a.priv}`,
    "listen_port=51820",
    ...peerBlock(c.pub),
    ...peerBlock(b.pub, {
      preshared_key: psk,
      endpoint: "[fd00::1]:51820",
      persistent_keepalive_interval: "25",
      allowed_ip: ["10.0.0.0/24", "fd00::/64"],
    }),
  ]);
  device.close();
});

Deno.test("ipcSet() our own public key opens a dummy section, still validated", () => {
  const { device } = setup();
  const me = key();
  assert.equal(set(device, `private_key=${me.priv}`), null);
  assert.equal(set(device, `public_key=${me.pub}`, "allowed_ip=10.0.0.0/8"), null);
  assert.equal(device.peerCount, 0);
  assert.equal(set(device, `public_key=${me.pub}`, "allowed_ip=10.0.0.0/33")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, `public_key=${me.pub}`, "endpoint=nope")?.errno, ERRNO.EINVAL);
  device.close();
});

Deno.test("ipcSet() an all-zero public key is a dummy while there is no private key", () => {
  const { device } = setup();
  assert.equal(set(device, `public_key=${"0".repeat(64)}`, "allowed_ip=10.0.0.0/8"), null);
  assert.equal(device.peerCount, 0);
  device.close();
});

Deno.test("ipcSet() remove deletes the peer and ignores the rest of its section", () => {
  const { device } = setup();
  const a = key();
  assert.equal(set(device, `public_key=${a.pub}`, "allowed_ip=10.0.0.0/8"), null);
  assert.equal(
    set(device, `public_key=${a.pub}`, "remove=true", "allowed_ip=10.1.0.0/16", "remove=true"),
    null,
  );
  assert.equal(device.peerCount, 0);
  assert.equal(set(device, `public_key=${a.pub}`, "remove=false")?.errno, ERRNO.EINVAL);
  // The failed line came after the peer was created.
  assert.equal(device.peerCount, 1);
  device.close();
});

Deno.test("ipcSet() update_only creates nothing but updates an existing peer", () => {
  const { device } = setup();
  const a = key();
  assert.equal(
    set(device, `public_key=${a.pub}`, "update_only=true", "allowed_ip=10.0.0.0/8"),
    null,
  );
  assert.equal(device.peerCount, 0);
  assert.equal(set(device, `public_key=${a.pub}`), null);
  assert.equal(
    set(device, `public_key=${a.pub}`, "update_only=true", "persistent_keepalive_interval=5"),
    null,
  );
  assert.equal(device.lookupPeer(a.pubBytes)!.persistentKeepaliveInterval, 5);
  assert.equal(set(device, `public_key=${a.pub}`, "update_only=yes")?.errno, ERRNO.EINVAL);
  device.close();
});

Deno.test("ipcSet() replace_peers removes all peers at that point", () => {
  const { device } = setup();
  const a = key(), b = key();
  assert.equal(set(device, `public_key=${a.pub}`), null);
  assert.equal(set(device, "replace_peers=true", `public_key=${b.pub}`), null);
  assert.equal(device.peerCount, 1);
  assert.ok(device.lookupPeer(b.pubBytes));
  assert.equal(set(device, "replace_peers=1")?.errno, ERRNO.EINVAL);
  device.close();
});

Deno.test("ipcSet() allowed_ip: replace, '-' removal, and moving a prefix between peers", () => {
  const { device } = setup();
  const a = key(), b = key();
  assert.equal(
    set(device, `public_key=${a.pub}`, "allowed_ip=10.0.0.0/24", "allowed_ip=10.0.1.0/24"),
    null,
  );
  assert.equal(set(device, `public_key=${b.pub}`, "allowed_ip=10.0.1.0/24"), null);
  const ips = (pub: Uint8Array) =>
    device.allowedIps.entriesFor(device.lookupPeer(pub)!).map((e) => `${e.ip.join(".")}/${e.cidr}`);
  assert.deepEqual(ips(a.pubBytes), ["10.0.0.0/24"]);
  assert.deepEqual(ips(b.pubBytes), ["10.0.1.0/24"]);
  assert.equal(set(device, `public_key=${a.pub}`, "allowed_ip=-10.0.0.0/24"), null);
  assert.deepEqual(ips(a.pubBytes), []);
  // Removing a prefix another peer owns does nothing.
  assert.equal(set(device, `public_key=${a.pub}`, "allowed_ip=-10.0.1.0/24"), null);
  assert.deepEqual(ips(b.pubBytes), ["10.0.1.0/24"]);
  assert.equal(
    set(device, `public_key=${b.pub}`, "replace_allowed_ips=true", "allowed_ip=10.9.0.0/16"),
    null,
  );
  assert.deepEqual(ips(b.pubBytes), ["10.9.0.0/16"]);
  assert.equal(set(device, `public_key=${b.pub}`, "replace_allowed_ips=false")?.errno, -22);
  assert.equal(set(device, `public_key=${b.pub}`, "allowed_ip=10.0.0.0")?.errno, -22);
  device.close();
});

Deno.test("ipcSet() preshared_key, endpoint and keepalive values are validated", () => {
  const { device } = setup();
  const a = key();
  const p = `public_key=${a.pub}`;
  assert.equal(set(device, p, "preshared_key=00")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, p, "endpoint=example.com:1")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, p, "endpoint=1.2.3.4")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, p, "persistent_keepalive_interval=65536")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, p, "persistent_keepalive_interval=-1")?.errno, ERRNO.EINVAL);
  assert.equal(set(device, p, "endpoint=192.0.2.9:7", "persistent_keepalive_interval=65535"), null);
  const peer = device.lookupPeer(a.pubBytes)!;
  assert.equal(peer.endpoint?.toString(), "192.0.2.9:7");
  assert.equal(peer.persistentKeepaliveInterval, 65535);
  device.close();
});

Deno.test("IpcSetSession post-config starts peers only while up, keepalive when turned on", () => {
  const { device, bind } = setup();
  const me = key(), a = key(), b = key();
  assert.equal(set(device, `private_key=${me.priv}`, "listen_port=51820"), null);
  // Down: peers are configured but not started.
  assert.equal(set(device, `public_key=${a.pub}`, "endpoint=192.0.2.50:1"), null);
  assert.equal(device.lookupPeer(a.pubBytes)!.isRunning, false);
  device.up();
  const sentBefore = bind.sent;
  // Turning keepalive on for `a` sends at once (a handshake initiation, as
  // there is no session); `b` comes after it in the same request and must not
  // inherit the flag.
  assert.equal(
    set(
      device,
      `public_key=${a.pub}`,
      "persistent_keepalive_interval=25",
      `public_key=${b.pub}`,
      "endpoint=192.0.2.51:1",
    ),
    null,
  );
  assert.equal(device.lookupPeer(b.pubBytes)!.isRunning, true);
  assert.equal(bind.sent - sentBefore, 1, "one initiation, to a only");
  // Setting the same interval again is not "turning it on".
  assert.equal(set(device, `public_key=${a.pub}`, "persistent_keepalive_interval=25"), null);
  assert.equal(bind.sent - sentBefore, 1);
  device.close();
});

Deno.test("IpcSetSession a failing section is not post-configured", () => {
  const { device } = setup();
  device.up();
  const a = key();
  const s = new IpcSetSession(device);
  s.line("public_key", a.pub);
  assert.throws(() => s.line("allowed_ip", "bad"), UapiError);
  assert.throws(() => s.line("allowed_ip", "10.0.0.0/8"), UapiError, "no lines after a failure");
  s.end();
  assert.equal(device.lookupPeer(a.pubBytes)!.isRunning, false);
  device.close();
});

Deno.test("deviceHandler() serves get and set", () => {
  const { device } = setup();
  const h = deviceHandler(device);
  const s = h.set();
  s.line("listen_port", "4242");
  s.end();
  assert.equal(h.get(), "listen_port=4242\n");
  device.close();
});
