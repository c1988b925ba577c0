// SPDX-License-Identifier: Apache-2.0
// Tunnel.datagram() and Tunnel.resolve(): UDP both ways between two tunnels
// in memory, and a tiny DNS server on B's stack answering A's stub resolver.
import assert from "node:assert/strict";
import { tunnelPair } from "./_pair.ts";
import { answer, PTR_QNAME, serveDns } from "./_dns_server.ts";
import { DnsError, TYPE_A, TYPE_CNAME } from "../../src/tunnel/dns.ts";

// The pair runs on a MemoryNetwork and the real clock, whose timers do not
// keep the process alive (a real Tunnel's UDP socket does): hold it open
// while a test waits on receive()/resolve() timeouts.
function keepAlive<T>(fn: () => Promise<T>): () => Promise<T> {
  return async () => {
    const t = setInterval(() => {}, 1000);
    try {
      return await fn();
    } finally {
      clearInterval(t);
    }
  };
}

Deno.test(
  "tunnel.datagram(): round trip over IPv4 and IPv6, iteration, close",
  keepAlive(async () => {
    const pair = await tunnelPair();
    try {
      const server = pair.b.datagram({ port: 5353 });
      assert.deepEqual(server.addr, { transport: "udp", hostname: "10.9.0.2", port: 5353 });
      const echo = (async () => {
        let n = 0;
        for await (const [data, from] of server) {
          await server.send(data.map((b) => b ^ 0xff), from);
          n++;
        }
        return n;
      })();
      const client = pair.a.datagram();
      assert.ok(client.addr.port >= 1024);
      for (const host of ["10.9.0.2", "fd09::2", "[fd09::2]"]) {
        const sent = new Uint8Array([1, 2, 3, host.length]);
        assert.equal(await client.send(sent, { hostname: host, port: 5353 }), 4);
        const [got, from] = await client.receive({ timeoutMs: 5000 });
        assert.deepEqual(got, sent.map((b) => b ^ 0xff));
        assert.equal(from.hostname, host.replace(/[\[\]]/g, ""));
        assert.equal(from.port, 5353);
      }
      // A full-MTU datagram arrives whole; one over the MTU is refused at once.
      const big = new Uint8Array(1420 - 28).fill(7);
      await client.send(big, { hostname: "10.9.0.2", port: 5353 });
      assert.equal((await client.receive({ timeoutMs: 5000 }))[0].length, big.length);
      await assert.rejects(
        client.send(new Uint8Array(1500), { hostname: "10.9.0.2", port: 5353 }),
        /larger than the MTU/,
      );
      await assert.rejects(
        client.send(new Uint8Array(1), { hostname: "b.test", port: 1 }),
        TypeError,
      );
      await assert.rejects(client.receive({ timeoutMs: 50 }), /timeout/);
      const pending = client.receive();
      client.close();
      await assert.rejects(pending, /closed/);
      await assert.rejects(client.send(new Uint8Array(1), { hostname: "10.9.0.2", port: 5353 }));
      server.close();
      assert.equal(await echo, 4, "the two refused sends never left");
    } finally {
      pair.close();
    }
  }),
);

Deno.test("tunnel.datagram(): a flood fills the bounded queue, the rest is dropped and counted", async () => {
  const pair = await tunnelPair();
  try {
    const sink = pair.b.datagram({ port: 9999 });
    const src = pair.a.datagram();
    // Make sure the handshake is done before the burst.
    await src.send(new Uint8Array(1), { hostname: "10.9.0.2", port: 9999 });
    await sink.receive({ timeoutMs: 5000 });
    const payload = new Uint8Array(1000);
    const total = 600; // 600 kB against a 256 KiB queue
    const udpIn = pair.b.stack.stats.udpIn;
    for (let i = 0; i < total; i++) {
      await src.send(payload, { hostname: "10.9.0.2", port: 9999 });
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    // Read nothing until every datagram has reached B's stack.
    const deadline = Date.now() + 5000;
    while (pair.b.stack.stats.udpIn - udpIn < total && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(pair.b.stack.stats.udpIn - udpIn, total, "all arrived");
    let got = 0;
    while (sink.tryReceive()) got++;
    assert.ok(sink.dropped > 0, "some dropped");
    assert.ok(got > 200 && got < 270, `queued ${got}: bounded by 256 KiB`);
    assert.equal(got + sink.dropped, total, "each datagram either queued or counted");
    sink.close();
    src.close();
  } finally {
    pair.close();
  }
});

/** B's zone: host.example.org, alias.example.org → host, ttl0.example.org. */
function zone(name: string, qtype: number, q: Uint8Array): Uint8Array | null {
  const addr = qtype === TYPE_A ? "10.9.0.2" : "fd09::2";
  switch (name) {
    case "host.example.org":
      return answer(q, [{ name: PTR_QNAME, type: qtype, data: addr }]);
    case "alias.example.org":
      return answer(q, [
        { name: PTR_QNAME, type: TYPE_CNAME, data: "host.example.org" },
        { name: "host.example.org", type: qtype, data: addr },
      ]);
    case "ttl0.example.org":
      return answer(q, [{ name: PTR_QNAME, type: qtype, ttl: 0, data: addr }]);
    case "v4only.example.org":
      return answer(q, qtype === TYPE_A ? [{ name: PTR_QNAME, type: qtype, data: addr }] : []);
    case "spoofed.example.org": {
      // A wrong-ID answer first (ignored), then the real one.
      return answer(q, [{ name: PTR_QNAME, type: qtype, data: addr }]);
    }
    case "servfail.example.org":
      return answer(q, [], { rcode: 2 });
    case "truncated.example.org":
      return answer(q, [], { tc: true });
    default:
      return answer(q, [], { rcode: 3 });
  }
}

Deno.test("tunnel.resolve(): search domains, CNAMEs, both families, cache and TTL", async () => {
  const pair = await tunnelPair({ dns: "10.9.0.2, example.org" });
  const dns = serveDns(pair.b, zone);
  try {
    const r = pair.a.resolver;
    assert.deepEqual(await pair.a.resolve("host"), ["10.9.0.2", "fd09::2"]);
    assert.deepEqual(dns.queries.sort(), ["host.example.org/1", "host.example.org/28"]);
    assert.deepEqual(await pair.a.resolve("HOST.example.org."), ["10.9.0.2", "fd09::2"]);
    assert.equal(r.cacheHits, 1);
    assert.equal(dns.queries.length, 2, "answered from the cache");
    assert.deepEqual(await pair.a.resolve("alias.example.org"), ["10.9.0.2", "fd09::2"]);
    assert.deepEqual(await pair.a.resolve("v4only.example.org"), ["10.9.0.2"]);
    await pair.a.resolve("ttl0.example.org");
    await pair.a.resolve("ttl0.example.org");
    assert.equal(dns.queries.filter((q) => q.startsWith("ttl0")).length, 4, "TTL 0: not cached");
    // A dotted name is tried alone first; NXDOMAIN then tries the search domain.
    await assert.rejects(
      pair.a.resolve("nothere.test"),
      (e) => e instanceof DnsError && e.code === "nxdomain",
    );
    assert.ok(dns.queries.includes("nothere.test/1"));
    assert.ok(dns.queries.includes("nothere.test.example.org/1"));
    // Literals and special-use names: no query at all.
    const before = dns.queries.length;
    assert.deepEqual(await pair.a.resolve("10.1.2.3"), ["10.1.2.3"]);
    assert.deepEqual(await pair.a.resolve("[FD09::0002]"), ["fd09::2"]);
    for (const n of ["localhost", "db.localhost.", "x.onion", "invalid"]) {
      await assert.rejects(pair.a.resolve(n), (e) => e instanceof DnsError && e.code === "name");
    }
    await assert.rejects(pair.a.resolve("a..b"), (e) => e instanceof DnsError && e.code === "name");
    assert.equal(dns.queries.length, before);
    // connect() takes names.
    const lis = pair.b.listen({ port: 8080 });
    const accepted = lis.accept();
    const c = await pair.a.connect({ hostname: "alias", port: 8080, timeoutMs: 5000 });
    assert.equal(c.remoteAddr.hostname, "10.9.0.2");
    (await accepted).close();
    c.close();
    lis.close();
    await assert.rejects(
      pair.a.connect({ hostname: "nothere.test", port: 80 }),
      (e) => e instanceof DnsError && e.code === "nxdomain",
    );
  } finally {
    await dns.stop();
    pair.close();
  }
});

Deno.test(
  "tunnel.resolve(): a silent server times out and the next one answers; bad answers move on",
  keepAlive(async () => {
    // 10.9.0.53 is routed to B, whose stack has no such address: silence.
    const pair = await tunnelPair({
      dns: "10.9.0.53, 10.9.0.2",
      tunnel: { dns: { timeoutMs: 300, attempts: 2, cacheSize: 2 } },
    });
    let spoofs = 0;
    const dns = serveDns(pair.b, (name, qtype, q) => {
      if (name === "spoofed.example.org" && spoofs++ < 2) {
        // Sent from the right address and port, but with the wrong ID: ignored.
        const fake = answer(q, [{
          name: PTR_QNAME,
          type: qtype,
          data: qtype === TYPE_A ? "192.0.2.66" : "2001:db8::66",
        }], {
          id: ((q[0] << 8) | q[1]) ^ 1,
        });
        return fake;
      }
      return zone(name, qtype, q);
    });
    try {
      const t0 = Date.now();
      assert.deepEqual(await pair.a.resolve("host.example.org"), ["10.9.0.2", "fd09::2"]);
      const took = Date.now() - t0;
      assert.ok(took >= 300 && took < 2000, `first server timed out, second answered (${took} ms)`);
      // Wrong-ID answers are ignored while waiting; the wait then times out and
      // the retry (second walk over the list) gets the real answer.
      assert.deepEqual(await pair.a.resolve("spoofed.example.org"), ["10.9.0.2", "fd09::2"]);
      // SERVFAIL and TC: every server, every attempt, then the last error.
      await assert.rejects(
        pair.a.resolve("servfail.example.org"),
        (e) => e instanceof DnsError && e.code === "servfail",
      );
      await assert.rejects(
        pair.a.resolve("truncated.example.org"),
        (e) => e instanceof DnsError && e.code === "truncated",
      );
      // The cache holds at most 2 names.
      await pair.a.resolve("alias.example.org");
      await pair.a.resolve("v4only.example.org");
      assert.equal(pair.a.resolver.cached, 2);
    } finally {
      await dns.stop();
      pair.close();
    }
  }),
);

Deno.test("tunnel.resolve(): no DNS server configured is a clear error", async () => {
  const pair = await tunnelPair({ dns: "example.org" });
  try {
    await assert.rejects(pair.a.resolve("host"), /no DNS server in \[Interface\] DNS/);
    assert.deepEqual(pair.a.config.dnsSearch, ["example.org"]);
  } finally {
    pair.close();
  }
});

Deno.test(
  "tunnel.resolve(): concurrent lookups of one name share queries; more than maxLookups is busy",
  keepAlive(async () => {
    const pair = await tunnelPair({
      dns: "10.9.0.53",
      tunnel: { dns: { timeoutMs: 200, attempts: 1, maxLookups: 1 } },
    });
    try {
      const timeout = (e: unknown) => e instanceof DnsError && e.code === "timeout";
      const first = assert.rejects(pair.a.resolve("a.test"), timeout);
      const same = assert.rejects(pair.a.resolve("A.test."), timeout);
      await assert.rejects(
        pair.a.resolve("b.test"),
        (e) => e instanceof DnsError && e.code === "busy",
      );
      await Promise.all([first, same]);
      assert.equal(pair.a.resolver.queries, 2, "one A and one AAAA query for both callers");
      // The slot is free again.
      await assert.rejects(pair.a.resolve("b.test"), timeout);
    } finally {
      pair.close();
    }
  }),
);
