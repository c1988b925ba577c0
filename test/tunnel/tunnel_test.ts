// SPDX-License-Identifier: Apache-2.0
// Tunnel: wg-quick text to a working tunnel; two tunnels in memory carry TCP.
import assert from "node:assert/strict";
import { bytes, readAll, tunnelPair, writeAll } from "./_pair.ts";
import { parseTunnelConfig, TunnelConfigError } from "../../src/tunnel/config.ts";
import { TunnelError } from "../../src/tunnel/conn.ts";
import { DnsError } from "../../src/tunnel/dns.ts";
import { Tunnel } from "../../src/tunnel/tunnel.ts";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { realClock, systemRng } from "../../src/clock.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { formatPrefix } from "../../src/ip.ts";
import { keyToBase64 } from "../../src/keys.ts";

const KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";

Deno.test("tunnel config: wg-quick keys, lists, comments; errors name the line", () => {
  const c = parseTunnelConfig(`[interface]
privatekey = ${KEY} # comment
Address = 10.0.0.1/24,fd00::1/64 10.0.1.1
DNS = 1.1.1.1, example.com, 2606:4700::1111
MTU = 1380
Table = off
PostUp = echo not run # kept by wg-quick, ignored here
[Peer]
PublicKey = ${KEY}
AllowedIPs = 0.0.0.0/0, ::/0
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = 25
`);
  assert.deepEqual(c.addresses, ["10.0.0.1", "fd00::1", "10.0.1.1"]);
  assert.deepEqual(c.dns, ["1.1.1.1", "2606:4700::1111"]);
  assert.deepEqual(c.dnsSearch, ["example.com"]);
  assert.equal(c.mtu, 1380);
  assert.equal(c.peers.length, 1);
  assert.equal(c.peers[0].endpoint, "[2001:db8::1]:51820");
  assert.equal(c.peers[0].persistentKeepalive, 25);
  assert.deepEqual(c.peers[0].allowedIps, ["0.0.0.0/0", "::/0"]);
  const bad = (text: string, re: RegExp) =>
    assert.throws(
      () => parseTunnelConfig(text),
      (e) => e instanceof TunnelConfigError && re.test(e.message),
    );
  bad(`[Interface]\nPrivateKey = nope\nAddress = 10.0.0.1`, /line 2: invalid PrivateKey/);
  bad(`[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.300`, /line 3: invalid Address/);
  bad(`[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1\nFoo = 1`, /line 4: unknown key foo/);
  bad(`[Interface]\nPrivateKey = ${KEY}`, /no Address/);
  bad(
    `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1\nDNS = 1.1.1.1, a/b`,
    /line 4: invalid DNS "a\/b"/,
  );
  bad(
    `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1\n[Peer]\nAllowedIPs = 1.2.3.4/32`,
    /no PublicKey/,
  );
  bad(
    `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1\n[Peer]\nPublicKey = ${KEY}\nEndpoint = nowhere`,
    /line 6: invalid Endpoint/,
  );
  bad(
    `[Interface]\nPrivateKey = ${KEY}\nAddress = 10.0.0.1\n[Peer]\nPublicKey = ${KEY}\nEndpoint = 192.0.2.1:65536`,
    /line 6: invalid Endpoint/,
  );
});

Deno.test("tunnel: fromConfig applies keys, port, fwmark and peers to the device as a UAPI set does", async () => {
  const net = new MemoryNetwork(realClock);
  const sk = generatePrivateKey(systemRng);
  const [k1, k2, psk] = [1, 2, 3].map(() => generatePrivateKey(systemRng));
  const [p1, p2] = [publicKey(k1), publicKey(k2)];
  const b64 = keyToBase64;
  const names: string[] = [];
  const t = await Tunnel.fromConfig(
    `[Interface]
PrivateKey = ${b64(sk)}
Address = 10.7.0.1/24
ListenPort = 40001
FwMark = 4660

[Peer] # our own public key: ignored
PublicKey = ${b64(publicKey(sk))}
AllowedIPs = 10.7.9.0/24

[Peer]
PublicKey = ${b64(p1)}
PresharedKey = ${b64(psk)}
AllowedIPs = 10.7.1.0/24, fd07:1::/64
Endpoint = peer-one.example:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${b64(p2)}
AllowedIPs = 10.7.2.7/32
Endpoint = [2001:db8::2]:51822
PersistentKeepalive = 7

[Peer] # the same key again: replaces its allowed IPs, keepalive back to off
PublicKey = ${b64(p1)}
AllowedIPs = 10.7.3.0/24
`,
    {
      bind: net.createBind({ v4: "192.0.2.1" }),
      resolveEndpoint: (name) => {
        names.push(name);
        return Promise.resolve(["192.0.2.11"]);
      },
    },
  );
  try {
    const d = t.device;
    assert.deepEqual(names, ["peer-one.example"]);
    assert.deepEqual(d.publicKey, publicKey(sk));
    assert.equal(d.listenPort, 40001);
    assert.equal(d.fwmark, 0x1234);
    const peers = [...d.peers()];
    assert.deepEqual(peers.map((p) => keyToBase64(p.publicKey)), [b64(p1), b64(p2)]);
    const prefixes = (i: number) =>
      d.allowedIps.entriesFor(peers[i]).map((e) => formatPrefix(e.family, e.ip, e.cidr));
    assert.deepEqual(prefixes(0), ["10.7.3.0/24"]);
    assert.deepEqual(prefixes(1), ["10.7.2.7/32"]);
    assert.deepEqual(peers[0].presharedKey, psk);
    assert.deepEqual(peers[1].presharedKey, new Uint8Array(32));
    assert.equal(peers[0].endpoint?.toString(), "192.0.2.11:51820");
    assert.equal(peers[1].endpoint?.toString(), "[2001:db8::2]:51822");
    assert.equal(peers[0].persistentKeepaliveInterval, 0);
    assert.equal(peers[1].persistentKeepaliveInterval, 7);
  } finally {
    t.close();
  }
  await assert.rejects(
    Tunnel.fromConfig(
      `[Interface]\nPrivateKey = ${b64(sk)}\nAddress = 10.7.0.1\n[Peer]\nPublicKey = ${
        b64(p1)
      }\nEndpoint = somewhere:1`,
      { bind: net.createBind({ v4: "192.0.2.1" }), resolveEndpoint: () => Promise.resolve(["x"]) },
    ),
    (e) => e instanceof TunnelConfigError && /\[Peer\] 1: invalid Endpoint/.test(e.message),
  );
});

async function exchange(family: 4 | 6) {
  const pair = await tunnelPair();
  try {
    const lis = pair.b.listen({ port: 7000 });
    const size = 1 << 20;
    const up = bytes(size, 3), down = bytes(size, 4);
    const server = (async () => {
      const s = await lis.accept();
      const [got] = await Promise.all([readAll(s.readable), writeAll(s.writable, down)]);
      return { got, remote: s.remoteAddr };
    })();
    const hostname = family === 4 ? "10.9.0.2" : "fd09::2";
    const c = await pair.a.connect({ hostname, port: 7000 });
    assert.equal(c.remoteAddr.hostname, hostname);
    assert.equal(c.remoteAddr.port, 7000);
    assert.equal(c.localAddr.hostname, family === 4 ? "10.9.0.1" : "fd09::1");
    const [got] = await Promise.all([readAll(c.readable), writeAll(c.writable, up)]);
    const s = await server;
    assert.equal(s.remote.port, c.localAddr.port);
    assert.equal(got.length, size);
    assert.equal(s.got.length, size);
    assert.ok(got.every((b, i) => b === down[i]), "B to A byte-exact");
    assert.ok(s.got.every((b, i) => b === up[i]), "A to B byte-exact");
    c.close();
    lis.close();
  } finally {
    pair.close();
  }
}

Deno.test("tunnel: two tunnels in memory, 1 MB each way byte-exact over IPv4 inside", () =>
  exchange(4));
Deno.test("tunnel: two tunnels in memory, 1 MB each way byte-exact over IPv6 inside", () =>
  exchange(6));

Deno.test("tunnel: a closed port is refused (RST), a special-use name is not resolved", async () => {
  const pair = await tunnelPair();
  try {
    await assert.rejects(
      pair.a.connect({ hostname: "10.9.0.2", port: 7001 }),
      (e) => e instanceof TunnelError && e.code === "refused",
    );
    await assert.rejects(
      pair.a.connect({ hostname: "localhost", port: 80 }),
      (e) => e instanceof DnsError && e.code === "name",
    );
  } finally {
    pair.close();
  }
});
