// SPDX-License-Identifier: Apache-2.0
// DNS messages: queries byte for byte, answers with compression and CNAMEs,
// and hostile answers (bounds, pointer loops, oversized names, truncation).
import assert from "node:assert/strict";
import {
  buildQuery,
  DnsError,
  encodeName,
  parseResponse,
  readName,
  TYPE_A,
  TYPE_AAAA,
  TYPE_CNAME,
} from "../../src/tunnel/dns.ts";
import { answer, PTR_QNAME } from "./_dns_server.ts";

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
}

function fails(fn: () => unknown, code: string, re?: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof DnsError, String(e));
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return true;
  });
}

Deno.test("dns: buildQuery() writes RFC 1035 §4.1 bytes (RD, one IN question)", () => {
  assert.deepEqual(
    buildQuery(0xbeef, "Example.com.", TYPE_A),
    hex("beef 0100 0001 0000 0000 0000 07 4578616d706c65 03 636f6d 00 0001 0001"),
  );
  assert.deepEqual(buildQuery(1, "a", TYPE_AAAA).subarray(12), hex("01 61 00 001c 0001"));
  fails(() => encodeName(""), "name");
  fails(() => encodeName("a..b"), "name");
  fails(() => encodeName(`${"x".repeat(64)}.com`), "name");
  fails(() => encodeName(Array(128).fill("ab").join(".")), "name", /too long/);
  fails(() => encodeName("bücher.de"), "name", /ASCII/);
  fails(() => encodeName("a b"), "name");
  // 253 characters is the longest name: 255 octets on the wire.
  const longest = Array(4).fill("x".repeat(63)).join(".").slice(0, 253);
  assert.equal(encodeName(longest).length, 255);
});

Deno.test("dns: parseResponse() reads a captured answer with compression (c00c)", () => {
  // example.com A: two answers, owner names compressed to the question.
  const msg = hex(
    "1234 8180 0001 0002 0000 0000" +
      "07 6578616d706c65 03 636f6d 00 0001 0001" +
      "c00c 0001 0001 00000e10 0004 5db8d822" +
      "c00c 0001 0001 00000258 0004 5db8d823",
  );
  const r = parseResponse(msg, { id: 0x1234, name: "EXAMPLE.com", qtype: TYPE_A });
  assert.deepEqual(r.addresses, ["93.184.216.34", "93.184.216.35"]);
  assert.equal(r.ttl, 600, "smallest TTL");
});

Deno.test("dns: parseResponse() follows a CNAME chain, skips other records, AAAA", () => {
  const q = buildQuery(7, "www.example.org", TYPE_AAAA);
  const r = parseResponse(
    answer(q, [
      { name: PTR_QNAME, type: TYPE_CNAME, ttl: 100, data: "edge.example.net" },
      { name: "other.example", type: TYPE_AAAA, data: "2001:db8::dead" },
      { name: "edge.example.net", type: TYPE_CNAME, ttl: 50, data: "e1.example.net" },
      { name: "E1.Example.NET", type: TYPE_AAAA, ttl: 200, data: "2001:db8::1" },
      { name: "e1.example.net", type: TYPE_AAAA, ttl: 200, data: "2001:db8::1" },
    ]),
    { id: 7, name: "www.example.org", qtype: TYPE_AAAA },
  );
  assert.deepEqual(r.addresses, ["2001:db8::1"], "only the chain's end, de-duplicated");
  assert.equal(r.ttl, 50);
  // A CNAME rdata compressed with a pointer into the question name.
  const q2 = buildQuery(8, "a.example.org", TYPE_A);
  // "b" + pointer to "example.org" inside the question (offset 12 + 2).
  const target = new Uint8Array([1, 0x62, 0xc0, 14]);
  const r2 = parseResponse(
    answer(q2, [
      { name: PTR_QNAME, type: TYPE_CNAME, data: target },
      { name: "b.example.org", type: TYPE_A, data: "192.0.2.7" },
    ]),
    { id: 8, name: "a.example.org", qtype: TYPE_A },
  );
  assert.deepEqual(r2.addresses, ["192.0.2.7"]);
  // NODATA: the name exists, no record of the type.
  const nodata = parseResponse(answer(q2, []), { id: 8, name: "a.example.org", qtype: TYPE_A });
  assert.deepEqual(nodata, { addresses: [], ttl: 0 });
});

Deno.test("dns: parseResponse() classifies rcodes, TC and answers to other queries", () => {
  const q = buildQuery(9, "x.test", TYPE_A);
  const want = { id: 9, name: "x.test", qtype: TYPE_A };
  fails(() => parseResponse(answer(q, [], { rcode: 3 }), want), "nxdomain");
  fails(() => parseResponse(answer(q, [], { rcode: 2 }), want), "servfail");
  fails(() => parseResponse(answer(q, [], { rcode: 5 }), want), "refused");
  fails(() => parseResponse(answer(q, [], { tc: true }), want), "truncated", /truncated/);
  fails(() => parseResponse(answer(q, [], { id: 10 }), want), "mismatch");
  fails(() => parseResponse(q, want), "mismatch", /Not an answer/); // QR clear
  fails(() => parseResponse(answer(q, []), { ...want, name: "y.test" }), "mismatch");
  fails(() => parseResponse(answer(q, []), { ...want, qtype: TYPE_AAAA }), "mismatch");
  fails(() => parseResponse(new Uint8Array(5), want), "mismatch");
});

Deno.test("dns: hostile answers are clear errors, never hangs or out-of-bounds reads", () => {
  const q = buildQuery(5, "h.test", TYPE_A);
  const want = { id: 5, name: "h.test", qtype: TYPE_A };
  const ok = answer(q, [{ name: PTR_QNAME, type: TYPE_A, data: "192.0.2.1" }]);
  // Every truncation of a valid answer fails cleanly (or, cut before the
  // question ends, is not an answer to us).
  for (let n = 0; n < ok.length; n++) {
    assert.throws(() => parseResponse(ok.subarray(0, n), want), DnsError, `cut at ${n}`);
  }
  assert.deepEqual(parseResponse(ok, want).addresses, ["192.0.2.1"]);
  const qEnd = q.length;
  // Owner name that points at itself, and a two-pointer loop.
  const self = ok.slice();
  self.set([0xc0, qEnd], qEnd);
  fails(() => parseResponse(self, want), "malformed", /pointer/);
  // A label then a pointer back to that label: each jump goes backwards
  // from the pointer, yet it loops; only pointers before the name's start
  // (and before each earlier jump) are taken.
  const loop = new Uint8Array([...q.subarray(0, qEnd), 1, 0x61, 0xc0, qEnd]);
  loop[7] = 1; // ANCOUNT
  loop[2] |= 0x80;
  fails(() => parseResponse(loop, want), "malformed", /pointer/);
  // A forward pointer.
  const fwd = ok.slice();
  fwd.set([0xc0, qEnd + 4], qEnd);
  fails(() => parseResponse(fwd, want), "malformed");
  // Extended label types 0x40 and 0x80.
  for (const t of [0x41, 0x81]) {
    const ext = ok.slice();
    ext[qEnd] = t;
    fails(() => parseResponse(ext, want), "malformed", /label type/);
  }
  // ANCOUNT larger than the records present.
  const more = ok.slice();
  more[7] = 200;
  fails(() => parseResponse(more, want), "malformed");
  // RDLENGTH past the end, and an A record of 5 bytes.
  const rdlen = ok.slice();
  rdlen[ok.length - 5] = 0x40;
  fails(() => parseResponse(rdlen, want), "malformed", /past the end/);
  fails(
    () =>
      parseResponse(answer(q, [{ name: PTR_QNAME, type: TYPE_A, data: new Uint8Array(5) }]), want),
    "malformed",
    /A of 5 bytes/,
  );
  // A name of more than 255 octets built from back-pointing pieces.
  const parts: number[] = [...q.subarray(0, qEnd)];
  let prev = -1;
  for (let i = 0; i < 6; i++) {
    const at = parts.length;
    parts.push(60, ...new Uint8Array(60).fill(0x61));
    if (prev < 0) parts.push(0);
    else parts.push(0xc0 | (prev >> 8), prev & 255);
    prev = at;
  }
  const big = readName.bind(null, new Uint8Array(parts));
  assert.throws(() => big(prev), /longer than 255/);
  // A CNAME loop (a → b → a) ends at the chain limit.
  const cq = buildQuery(6, "a.test", TYPE_A);
  fails(
    () =>
      parseResponse(
        answer(cq, [
          { name: "a.test", type: TYPE_CNAME, data: "b.test" },
          { name: "b.test", type: TYPE_CNAME, data: "a.test" },
        ]),
        { id: 6, name: "a.test", qtype: TYPE_A },
      ),
    "malformed",
    /CNAME chain/,
  );
  // Label bytes that are dots or unprintable cannot pass for other names.
  assert.equal(readName(new Uint8Array([3, 0x61, 0x2e, 0x62, 0]), 0).name, "a\\046b");
});

Deno.test("dns: random bytes after a valid question never crash the parser", () => {
  const q = buildQuery(3, "r.test", TYPE_A);
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16 & 255;
  for (let i = 0; i < 5000; i++) {
    const tail = Array.from({ length: rand() % 80 }, rand);
    const m = new Uint8Array([...q, ...tail]);
    m[2] |= 0x80;
    m[7] = rand() % 4;
    try {
      parseResponse(m, { id: 3, name: "r.test", qtype: TYPE_A });
    } catch (e) {
      assert.ok(e instanceof DnsError, String(e));
    }
  }
});
