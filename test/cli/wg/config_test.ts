// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Unit tests of config parsing (no daemon, no network): the messages
 * wireguard-tools prints, the flags that decide what is sent, key files, and
 * endpoint resolution retries.
 */
import assert from "node:assert/strict";
import {
  ConfigReader,
  parseEndpoint,
  parseKeyfile,
  readCommand,
  splitLines,
  validateNetmask,
} from "../../../cli/wg/config.ts";
import {
  WGDEVICE_HAS_FWMARK,
  WGDEVICE_HAS_LISTEN_PORT,
  WGDEVICE_HAS_PRIVATE_KEY,
  WGDEVICE_REPLACE_PEERS,
  WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_REMOVE_ME,
  WGPEER_REPLACE_ALLOWEDIPS,
} from "../../../cli/wg/containers.ts";
import { keyToBase64 } from "../../../cli/wg/encoding.ts";
import { formatSet } from "../../../cli/wg/ipc.ts";
import { fallbackResolver } from "../../../cli/wg/resolve.ts";
import { configContext } from "./_io.ts";

const KEY = keyToBase64(new Uint8Array(32).fill(7));
const KEY2 = keyToBase64(new Uint8Array(32).fill(9));

async function parse(text: string, append = false) {
  const c = configContext();
  const reader = new ConfigReader(c.ctx, append);
  for (const line of splitLines(text)) {
    if (!(await reader.line(line))) {
      await c.ctx.stdio.flush();
      return { device: null, err: c.err.text() };
    }
  }
  const device = reader.finish();
  await c.ctx.stdio.flush();
  return { device, err: c.err.text() };
}

Deno.test("splitLines() keeps newlines like getline()", () => {
  assert.deepEqual(splitLines("a\nb\n"), ["a\n", "b\n"]);
  assert.deepEqual(splitLines("a\n\nb"), ["a\n", "\n", "b"]);
  assert.deepEqual(splitLines(""), []);
});

Deno.test("ConfigReader strips comments and all whitespace, and matches keys case-insensitively", async () => {
  const { device, err } = await parse(
    `# top\n [interface] \r\n Private Key = ${KEY} # c\nLISTENPORT=51820\nfwmark = 0x10\n` +
      `[peer]\npublickey=${KEY2}\nAllowed IPs = 10.0.0.0/8 , fd00::/64\nPersistentKeepalive = off\n`,
  );
  assert.equal(err, "");
  assert.ok(device);
  assert.equal(device.listenPort, 51820);
  assert.equal(device.fwmark, 16);
  assert.equal(device.peers.length, 1);
  assert.equal(device.peers[0].allowedIps.length, 2);
  assert.ok(device.peers[0].flags & WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL);
  assert.equal(
    device.flags,
    WGDEVICE_REPLACE_PEERS | WGDEVICE_HAS_PRIVATE_KEY | WGDEVICE_HAS_FWMARK |
      WGDEVICE_HAS_LISTEN_PORT,
  );
});

Deno.test("ConfigReader prints wg's messages for bad lines", async () => {
  const cases: [string, string][] = [
    ["PrivateKey = x\n", "Line unrecognized: `PrivateKey=x'\n"],
    ["[Interface]\nAddress = 10.0.0.1/24\n", "Line unrecognized: `Address=10.0.0.1/24'\n"],
    ["[Interface]\nListenPort =\n", "Line unrecognized: `ListenPort='\n"],
    ["[Interface]\nListenPort = nope\n", "Servname not supported for ai_socktype: `nope'\n"],
    ["[Interface]\nFwMark = 0X1\n", "Fwmark is neither 0/off nor 0-0xffffffff: `0X1'\n"],
    ["[Interface]\nPrivateKey = abc\n", "Key is not the correct length or format: `abc'\n"],
    [`[Interface]\nPublicKey = ${KEY}\n`, `Line unrecognized: \`PublicKey=${KEY}'\n`],
    ["[Peer]\nAllowedIPs = 10.0.0.0/8\n", "A peer is missing a public key\n"],
    [
      `[Peer]\nPublicKey=${KEY}\nAllowedIPs = 10.0.0.0/33\n`,
      "AllowedIP is not in the correct format: `10.0.0.0/33'\n",
    ],
    [`[Peer]\nPublicKey=${KEY}\nAllowedIPs = 10.0.0.0/8,\n`, "Unable to parse IP address: `'\n"],
    [
      `[Peer]\nPublicKey=${KEY}\nEndpoint = 1.2.3.4\n`,
      "Unable to find port of endpoint: `1.2.3.4'\n",
    ],
    [
      `[Peer]\nPublicKey=${KEY}\nEndpoint = [::1:5\n`,
      "Unable to find matching brace of endpoint: `[::1:5'\n",
    ],
    [
      `[Peer]\nPublicKey=${KEY}\nPersistentKeepalive = 65536\n`,
      "Persistent keepalive interval is neither 0/off nor 1-65535: `65536'\n",
    ],
    ["[Interface]\nListenPort = 5\0garbage\n[Bogus]\n", "Line unrecognized: `[Bogus]'\n"],
  ];
  for (const [text, want] of cases) {
    const { device, err } = await parse(text);
    assert.equal(device, null, text);
    assert.equal(err, want, text);
  }
});

Deno.test("ConfigReader warns about host bits but accepts them", async () => {
  const { device, err } = await parse(
    `[Peer]\nPublicKey=${KEY}\nAllowedIPs = 10.0.0.1/8, fd00::1/64\n`,
  );
  assert.ok(device);
  assert.equal(
    err,
    "Warning: AllowedIP has nonzero host part: 10.0.0.1/8\nWarning: AllowedIP has nonzero host part: fd00::1/64\n",
  );
});

Deno.test("addconf sends only what the file has; setconf always sends key, port, fwmark, replace_peers", async () => {
  const text = `[Peer]\nPublicKey=${KEY}\n`;
  const r = fallbackResolver();
  const add = (await parse(text, true)).device!;
  assert.equal(
    formatSet(add, r),
    `set=1\npublic_key=${"07".repeat(32)}\nreplace_allowed_ips=true\n\n`,
  );
  const set = (await parse(text, false)).device!;
  assert.equal(
    formatSet(set, r),
    `set=1\nprivate_key=${"00".repeat(32)}\nlisten_port=0\nfwmark=0\nreplace_peers=true\n` +
      `public_key=${"07".repeat(32)}\nreplace_allowed_ips=true\n\n`,
  );
});

Deno.test("a +/- prefix makes allowed-ips incremental", async () => {
  const { device } = await parse(
    `[Peer]\nPublicKey=${KEY}\nAllowedIPs = +10.0.0.0/8, -fd00::/64\n`,
    true,
  );
  assert.ok(device);
  const p = device.peers[0];
  assert.equal(p.flags & WGPEER_REPLACE_ALLOWEDIPS, 0);
  assert.deepEqual(p.allowedIps.map((a) => a.remove), [false, true]);
  assert.match(
    formatSet(device, fallbackResolver()),
    /allowed_ip=10\.0\.0\.0\/8\nallowed_ip=-fd00::\/64\n/,
  );
});

Deno.test("readCommand() follows config_read_cmd's argument rules", async () => {
  const c = configContext({ WG_ENDPOINT_RESOLUTION_RETRIES: "0" });
  const dev = await readCommand(c.ctx, [
    "listen-port",
    "70000",
    "fwmark",
    "off",
    "peer",
    KEY,
    "remove",
    "peer",
    KEY2,
    "endpoint",
    "[fe80::1%1]:5",
    "allowed-ips",
    " 10.0.0.0/8 ,\t::/0",
  ]);
  assert.ok(dev);
  assert.equal(dev.listenPort, 4464);
  assert.equal(dev.peers[0].flags & WGPEER_REMOVE_ME, WGPEER_REMOVE_ME);
  assert.equal(dev.peers[1].endpoint?.scopeId, 1);
  assert.equal(dev.peers[1].allowedIps.length, 2);
  for (
    const [args, want] of [
      [["peer", KEY, "listen-port", "1"], "Invalid argument: listen-port\n"],
      [["remove"], "Invalid argument: remove\n"],
      [["listen-port"], "Invalid argument: listen-port\n"],
      [["peer", "abc"], "Key is not the correct length or format: `abc'\n"],
      [["listen-port", ""], "Unable to parse empty port\n"],
      [["peer", KEY, "endpoint", ""], "Unable to parse empty endpoint\n"],
    ] as [string[], string][]
  ) {
    const e = configContext();
    assert.equal(await readCommand(e.ctx, args), null, args.join(" "));
    await e.ctx.stdio.flush();
    assert.equal(e.err.text(), want, args.join(" "));
  }
});

Deno.test("parseEndpoint() retries temporary failures with growing delays", async () => {
  const c = configContext({ WG_ENDPOINT_RESOLUTION_RETRIES: "3" });
  // A resolver that always fails temporarily.
  c.ctx.resolver = {
    getaddrinfo: () => ({ ok: false, code: -3, errno: 0 }),
    ifIndexToName: () => null,
  };
  assert.equal(await parseEndpoint(c.ctx, "host:1"), null);
  await c.ctx.stdio.flush();
  assert.deepEqual(c.sleeps, [1000, 1200, 1440]);
  const msg = "Temporary failure in name resolution: `host:1'";
  assert.equal(
    c.err.text(),
    `${msg}. Trying again in 1.00 seconds...\n${msg}. Trying again in 1.20 seconds...\n` +
      `${msg}. Trying again in 1.44 seconds...\n${msg}\n`,
  );
  const bad = configContext({ WG_ENDPOINT_RESOLUTION_RETRIES: "-1" });
  await assert.rejects(parseEndpoint(bad.ctx, "1.2.3.4:1"), (e: Error) => e.name === "WgExit");
  await bad.ctx.stdio.flush();
  assert.equal(bad.err.text(), "Unable to parse WG_ENDPOINT_RESOLUTION_RETRIES: `-1'\n");
});

Deno.test("parseKeyfile() reads 44 characters then whitespace; empty files and /dev/null are the zero key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtwg-" });
  try {
    await Deno.writeTextFile(`${dir}/empty`, "");
    await Deno.writeTextFile(`${dir}/key`, `${KEY}\n\n`);
    await Deno.writeTextFile(`${dir}/trailing`, `${KEY}\n\u00e9`);
    const c = configContext();
    assert.deepEqual(await parseKeyfile(c.ctx, `${dir}/empty`), new Uint8Array(32));
    assert.deepEqual(await parseKeyfile(c.ctx, "/dev/null"), new Uint8Array(32));
    assert.deepEqual(await parseKeyfile(c.ctx, `${dir}/key`), new Uint8Array(32).fill(7));
    assert.equal(await parseKeyfile(c.ctx, `${dir}/trailing`), null);
    assert.equal(await parseKeyfile(c.ctx, dir), null);
    assert.equal(await parseKeyfile(c.ctx, `${dir}/missing`), null);
    await c.ctx.stdio.flush();
    assert.deepEqual(
      [...c.err.chunks.flatMap((x) => [...x])],
      [
        ...new TextEncoder().encode("Found trailing character in key file: `"),
        0xc3, // the first byte of "é", printed raw with %c
        ...new TextEncoder().encode(
          "'\nInvalid length key in key file\nfopen: No such file or directory\n",
        ),
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validateNetmask() checks the bits below the prefix", () => {
  const v4 = (a: number[], cidr: number) => ({
    family: 4 as const,
    addr: new Uint8Array(a),
    cidr,
    remove: false,
  });
  assert.ok(validateNetmask(v4([10, 0, 0, 0], 8)));
  assert.ok(!validateNetmask(v4([10, 0, 0, 1], 8)));
  assert.ok(!validateNetmask(v4([10, 0, 0, 0], 0)));
  assert.ok(validateNetmask(v4([10, 0, 0, 1], 32)));
  assert.ok(validateNetmask(v4([10, 128, 0, 0], 9)));
  assert.ok(!validateNetmask(v4([10, 64, 0, 0], 9)));
});
