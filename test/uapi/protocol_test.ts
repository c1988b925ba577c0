// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for uapi/protocol.ts: the parsers accept and reject what
 * wireguard-go's Go parsers do, `formatGet` prints wireguard-go's order, and
 * UapiConnection frames like wireguard-go's IpcHandle (with a fake handler).
 */
import assert from "node:assert/strict";
import { ERRNO, UapiError } from "../../uapi/errors.ts";
import {
  cutLine,
  formatErrno,
  formatGet,
  formatKeyHex,
  isTrue,
  parseAllowedIp,
  parseEndpoint,
  parseFwmark,
  parseKeepalive,
  parseKeyHex,
  parseLines,
  parsePort,
  parseUint,
  UapiConnection,
} from "../../uapi/protocol.ts";
import { FakeHandler } from "./_fake_handler.ts";

const HEX = "e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a";

Deno.test("parseKeyHex() accepts 64 hex chars of either case", () => {
  const k = parseKeyHex(HEX)!;
  assert.equal(k.length, 32);
  assert.equal(k[0], 0xe8);
  assert.equal(formatKeyHex(k), HEX);
  assert.deepEqual(parseKeyHex(HEX.toUpperCase()), k);
  assert.equal(formatKeyHex(parseKeyHex("0".repeat(64))!), "0".repeat(64));
});

Deno.test("parseKeyHex() rejects wrong length and non-hex (hex.DecodeString + length check)", () => {
  for (
    const bad of [
      "",
      HEX.slice(0, 62),
      HEX.slice(0, 63),
      HEX + "00",
      HEX.slice(0, 63) + "g",
      " " + HEX.slice(1),
      HEX.slice(0, 63) + "\r",
      "6Ev8uGq5I3FT0oDrr9n1HV6M0PChWPhM5d8LeL1WA2c=", // base64 is not accepted
    ]
  ) {
    assert.equal(parseKeyHex(bad), null, JSON.stringify(bad));
  }
});

Deno.test("cutLine() splits at the first '=' without trimming", () => {
  assert.deepEqual(cutLine("a=b"), ["a", "b"]);
  assert.deepEqual(cutLine("a=b=c"), ["a", "b=c"]);
  assert.deepEqual(cutLine(" a = b "), [" a ", " b "]);
  assert.deepEqual(cutLine("=x"), ["", "x"]);
  assert.deepEqual(cutLine("k="), ["k", ""]);
  assert.equal(cutLine("noequals"), null);
});

Deno.test("parseUint() follows strconv.ParseUint(s, 10, bits)", () => {
  assert.equal(parseUint("0", 65535), 0);
  assert.equal(parseUint("65535", 65535), 65535);
  assert.equal(parseUint("00080", 65535), 80);
  assert.equal(parseUint("65536", 65535), null);
  for (const bad of ["", "-1", "+1", " 1", "1 ", "0x10", "1_000", "1.0", "1e3", "١"]) {
    assert.equal(parseUint(bad, 0xffffffff), null, bad);
  }
  assert.equal(parseUint("9".repeat(40), 0xffffffff), null);
  assert.equal(parseUint("0".repeat(40) + "7", 0xffffffff), 7);
});

Deno.test("parsePort(), parseFwmark(), parseKeepalive() ranges", () => {
  assert.equal(parsePort("51820"), 51820);
  assert.equal(parsePort("65536"), null);
  assert.equal(parseFwmark("4294967295"), 4294967295);
  assert.equal(parseFwmark("4294967296"), null);
  assert.equal(parseFwmark("0x10"), null);
  assert.equal(parseKeepalive("65535"), 65535);
  assert.equal(parseKeepalive("65536"), null);
});

Deno.test("isTrue() accepts only 'true'", () => {
  assert.equal(isTrue("true"), true);
  for (const v of ["True", "TRUE", "1", "yes", "", "true "]) assert.equal(isTrue(v), false, v);
});

Deno.test("parseEndpoint() accepts numeric v4 and bracketed v6 only", () => {
  assert.equal(parseEndpoint("192.168.1.1:51820")?.toString(), "192.168.1.1:51820");
  assert.equal(parseEndpoint("[abcd:23::33%2]:51820")?.toString(), "[abcd:23::33%2]:51820");
  assert.equal(parseEndpoint("[::ffff:1.2.3.4]:1")?.toString(), "[::ffff:1.2.3.4]:1");
  for (
    const bad of ["example.com:1", "1.2.3.4", "1.2.3.4:65536", "::1:5", "[::1]", "", "1.2.3:4"]
  ) {
    assert.equal(parseEndpoint(bad), null, bad);
  }
});

Deno.test("parseAllowedIp() parses a prefix with an optional '-'", () => {
  const a = parseAllowedIp("10.0.0.1/24")!;
  assert.deepEqual([a.remove, a.family, [...a.ip], a.cidr], [false, 4, [10, 0, 0, 1], 24]);
  const r = parseAllowedIp("-fd00::/64")!;
  assert.deepEqual([r.remove, r.family, r.cidr], [true, 6, 64]);
  for (const bad of ["10.0.0.1", "10.0.0.0/33", "::/129", "", "-", "--1.2.3.4/32", "x/1"]) {
    assert.equal(parseAllowedIp(bad), null, bad);
  }
});

Deno.test("formatGet() prints wireguard-go's key order and omits zero device fields", () => {
  const key = (b: number) => new Uint8Array(32).fill(b);
  const text = formatGet({
    privateKey: key(1),
    listenPort: 51820,
    fwmark: 0,
    peers: [
      {
        publicKey: key(2),
        presharedKey: new Uint8Array(32),
        endpoint: "[fd00::1]:51820",
        lastHandshakeSec: 1700000000,
        lastHandshakeNsec: 5,
        txBytes: 10,
        rxBytes: 2n ** 60n,
        persistentKeepaliveInterval: 25,
        allowedIps: [
          { family: 4, ip: new Uint8Array([10, 0, 0, 0]), cidr: 24 },
          { family: 6, ip: new Uint8Array(16), cidr: 0 },
        ],
      },
      {
        publicKey: key(3),
        presharedKey: key(4),
        endpoint: null,
        lastHandshakeSec: 0,
        lastHandshakeNsec: 0,
        txBytes: 0,
        rxBytes: 0,
        persistentKeepaliveInterval: 0,
        allowedIps: [],
      },
    ],
  });
  const h = (b: number) => b.toString(16).padStart(2, "0").repeat(32);
  assert.equal(
    text,
    [
      `private_key=${h(1)}`,
      "listen_port=51820",
      `public_key=${h(2)}`,
      `preshared_key=${h(0)}`,
      "protocol_version=1",
      "endpoint=[fd00::1]:51820",
      "last_handshake_time_sec=1700000000",
      "last_handshake_time_nsec=5",
      "tx_bytes=10",
      "rx_bytes=1152921504606846976",
      "persistent_keepalive_interval=25",
      "allowed_ip=10.0.0.0/24",
      "allowed_ip=::/0",
      `public_key=${h(3)}`,
      `preshared_key=${h(4)}`,
      "protocol_version=1",
      "last_handshake_time_sec=0",
      "last_handshake_time_nsec=0",
      "tx_bytes=0",
      "rx_bytes=0",
      "persistent_keepalive_interval=0",
      "",
    ].join("\n"),
  );
  assert.equal(
    formatGet({ privateKey: new Uint8Array(32), listenPort: 0, fwmark: 7, peers: [] }),
    "fwmark=7\n",
  );
  assert.equal(formatGet({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] }), "");
});

Deno.test("formatErrno() and parseLines()", () => {
  assert.equal(formatErrno(0), "errno=0\n\n");
  assert.equal(formatErrno(-22), "errno=-22\n\n");
  assert.deepEqual(parseLines("a=1\r\nb\nc=2=3\n\nd=4\n"), [["a", "1"], ["b", null], ["c", "2=3"]]);
});

// ---- framing ----

const enc = new TextEncoder();

function run(
  input: string | string[],
  opts: { eof?: boolean; maxRequestBytes?: number; handler?: FakeHandler } = {},
) {
  const handler = opts.handler ?? new FakeHandler();
  let out = "";
  const conn = new UapiConnection(handler, (t) => (out += t), {
    maxRequestBytes: opts.maxRequestBytes,
  });
  for (const chunk of Array.isArray(input) ? input : [input]) {
    const bytes = enc.encode(chunk);
    for (let off = 0; off < bytes.length && !conn.closed;) {
      const n = conn.feed(bytes.subarray(off));
      assert.ok(n > 0);
      off += n;
    }
  }
  if (opts.eof && !conn.closed) conn.end();
  return { out, log: handler.log, closed: conn.closed };
}

Deno.test("UapiConnection get replies body then errno=0", () => {
  const r = run("get=1\n\n");
  assert.equal(r.out, "listen_port=1\nerrno=0\n\n");
  assert.equal(r.closed, false);
});

Deno.test("UapiConnection get=1 followed by another byte is EINVAL and that byte is consumed", () => {
  // "x" is eaten; the next op line is "get=1\n" followed by "\n".
  const r = run("get=1\nxget=1\n\n");
  assert.equal(r.out, "errno=-22\n\nlisten_port=1\nerrno=0\n\n");
  // After the bad byte, the rest of the line is read as the next op line.
  const r2 = run("get=1\nx\n");
  assert.equal(r2.out, "errno=-22\n\n");
  assert.equal(r2.closed, true);
});

Deno.test("UapiConnection unknown operation closes without reply", () => {
  for (const op of ["get=2\n", "GET=1\n", "get=1\r\n", "\n", "set=1 \n", "foo\n"]) {
    const r = run(op + "\n");
    assert.equal(r.out, "", op);
    assert.equal(r.closed, true, op);
  }
});

Deno.test("UapiConnection set applies lines in order and replies errno=0", () => {
  const r = run("set=1\nprivate_key=ab\nlisten_port=5\n\n");
  assert.equal(r.out, "errno=0\n\n");
  assert.deepEqual(r.log, ["set", "private_key=ab", "listen_port=5", "end"]);
});

Deno.test("UapiConnection set cuts at the first '=' without trimming and drops one CR", () => {
  const r = run("set=1\n a = b=c \r\nk=\r\r\n=v\n\r\n");
  assert.equal(r.out, "errno=0\n\n");
  assert.deepEqual(r.log, ["set", " a = b=c ", "k=\r", "=v", "end"]);
});

Deno.test("UapiConnection set line without '=' is EPROTO", () => {
  const r = run("set=1\na=1\nnoequals\nb=2\n\nget=1\n\n");
  assert.equal(r.out, "errno=-71\n\nlisten_port=1\nerrno=0\n\n");
  assert.deepEqual(r.log, ["set", "a=1", "get"]);
});

Deno.test("UapiConnection set error: earlier lines stay, rest discarded, no end(), connection usable", () => {
  const r = run("set=1\na=1\nfail=-98\nb=2\n\nset=1\nc=3\n\n");
  assert.equal(r.out, "errno=-98\n\nerrno=0\n\n");
  assert.deepEqual(r.log, ["set", "a=1", "set", "c=3", "end"]);
});

Deno.test("UapiConnection non-UAPI exceptions become ENOANO (-55)", () => {
  const r = run("set=1\nthrow=1\n\n");
  assert.equal(r.out, `errno=${ERRNO.ENOANO}\n\n`);
  const h = new FakeHandler();
  h.getError = new UapiError(ERRNO.EIO, "x");
  assert.equal(run("get=1\n\n", { handler: h }).out, "errno=-5\n\n");
});

Deno.test("UapiConnection empty set replies errno=0", () => {
  const r = run("set=1\n\n");
  assert.equal(r.out, "errno=0\n\n");
  assert.deepEqual(r.log, ["set", "end"]);
});

Deno.test("UapiConnection.feed() stops after each reply", () => {
  let out = "";
  const conn = new UapiConnection(new FakeHandler(), (t) => (out += t));
  const input = enc.encode("get=1\n\nget=1\n\nset=1\n\n");
  assert.equal(conn.feed(input), 7);
  assert.equal(out, "listen_port=1\nerrno=0\n\n");
  assert.equal(conn.feed(input.subarray(7)), 7);
  assert.equal(conn.feed(input.subarray(14)), 7);
  assert.equal(out, "listen_port=1\nerrno=0\n\n".repeat(2) + "errno=0\n\n");
});

Deno.test("UapiConnection handles byte-by-byte input like one chunk", () => {
  const text = "get=1\n\nset=1\na=1\r\nb=2\n\nget=1\nzset=1\nfail=-22\nc=3\n\nget=1\n\n";
  const whole = run(text);
  const bytes = run(text.split(""));
  assert.equal(bytes.out, whole.out);
  assert.deepEqual(bytes.log, whole.log);
  assert.equal(
    whole.out,
    "listen_port=1\nerrno=0\n\nerrno=0\n\nerrno=-22\n\nerrno=-22\n\nlisten_port=1\nerrno=0\n\n",
  );
});

Deno.test("UapiConnection EOF in a set applies the final unterminated line and replies", () => {
  const r = run("set=1\na=1\nb=2", { eof: true });
  assert.equal(r.out, "errno=0\n\n");
  assert.deepEqual(r.log, ["set", "a=1", "b=2", "end"]);
  assert.equal(r.closed, true);
  const r2 = run("set=1\na=1\nfail=-22", { eof: true });
  assert.equal(r2.out, "errno=-22\n\n");
});

Deno.test("UapiConnection EOF after get=1 or mid-op closes silently", () => {
  assert.equal(run("get=1\n", { eof: true }).out, "");
  assert.equal(run("get=", { eof: true }).out, "");
  assert.equal(run("", { eof: true }).out, "");
});

Deno.test("UapiConnection a set line of 64 KiB is EIO after applying earlier lines", () => {
  const ok = "k=" + "v".repeat(65535 - 2); // 65535 bytes + "\n" fits bufio.Scanner
  const r1 = run(`set=1\n${ok}\n\n`);
  assert.equal(r1.out, "errno=0\n\n");
  const long = "k=" + "v".repeat(65536 - 2);
  const r = run(`set=1\na=1\n${long}\n\nget=1\n\n`);
  assert.equal(r.out, "errno=-5\n\n");
  assert.deepEqual(r.log, ["set", "a=1", "end"]);
  assert.equal(r.closed, true);
  // Also when it arrives in pieces.
  const r3 = run(["set=1\na=1\nk=", "v".repeat(40000), "v".repeat(40000)]);
  assert.equal(r3.out, "errno=-5\n\n");
});

Deno.test("UapiConnection an endless operation line closes the connection", () => {
  const r = run(["g".repeat(40000), "g".repeat(40000)]);
  assert.equal(r.out, "");
  assert.equal(r.closed, true);
});

Deno.test("UapiConnection applies a large set in batches before its blank line", () => {
  const handler = new FakeHandler();
  let out = "";
  const conn = new UapiConnection(handler, (t) => (out += t), { maxRequestBytes: 100 });
  const input = enc.encode("set=1\n" + "a=1234567890\n".repeat(10));
  assert.equal(conn.feed(input), input.length);
  assert.ok(handler.log.length > 1, "some lines applied before the blank line");
  conn.feed(enc.encode("\n"));
  assert.equal(out, "errno=0\n\n");
  assert.equal(handler.log.filter((l) => l.startsWith("a=")).length, 10);
  assert.equal(handler.log.at(-1), "end");
});
