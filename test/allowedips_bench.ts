// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Benchmarks for the allowed-IPs trie. The large table is the one the
 * kernel's and wireguard-go's `netns.sh` push through UAPI: every
 * 192.168.i.j/32 and abcd::i:j/128 for i in 0–254, j in 0–255 (130 560
 * prefixes on one peer). The random tables follow wireguard-go's
 * `BenchmarkTrieIPv{4,6}Peers100Addresses1000`.
 *
 * Before the benches, the memory cost per prefix is measured in a fresh
 * process (`deno eval --v8-flags=--expose-gc`, so that nothing else lives in
 * the heap and gc() can run before each reading) and printed: V8 heap plus
 * external memory (the typed arrays' backing stores) and RSS, each as the
 * difference around building the table.
 */
import { AllowedIps } from "../src/allowedips.ts";
import { RandomSource, seededRng } from "./_util/fake_clock.ts";

type Prefix = [4 | 6, Uint8Array, number];

function netnsPrefixes(): Prefix[] {
  const out: Prefix[] = [];
  for (let i = 0; i <= 254; i++) {
    for (let j = 0; j <= 255; j++) {
      out.push([4, new Uint8Array([192, 168, i, j]), 32]);
      const v6 = new Uint8Array(16);
      v6[0] = 0xab;
      v6[1] = 0xcd;
      v6[13] = i;
      v6[15] = j;
      out.push([6, v6, 128]);
    }
  }
  return out;
}

function randomPrefixes(family: 4 | 6, count: number, seed: number): Prefix[] {
  const rnd = new RandomSource(seededRng(seed));
  const len = family === 4 ? 4 : 16;
  const out: Prefix[] = [];
  for (let n = 0; n < count; n++) out.push([family, rnd.bytes(len), rnd.int(len * 8)]);
  return out;
}

function build(prefixes: Prefix[], peers: number): AllowedIps<number> {
  const t = new AllowedIps<number>();
  for (let i = 0; i < prefixes.length; i++) {
    const [family, ip, cidr] = prefixes[i];
    t.insert(family, ip, cidr, i % peers);
  }
  return t;
}

/** Queries laid out as packets: 1024 addresses of `len` bytes back to back. */
function queries(len: number, make: (i: number, out: Uint8Array) => void): Uint8Array {
  const buf = new Uint8Array(1024 * len);
  for (let i = 0; i < 1024; i++) make(i, buf.subarray(i * len, (i + 1) * len));
  return buf;
}

/**
 * Runs in a fresh process: builds the netns table (`kind` "netns") or 130 560
 * random IPv4 prefixes over 100 peers (`kind` "random4") and prints the
 * memory it holds as JSON. The prefixes are generated into one reused buffer,
 * so only the table is counted.
 */
const MEMORY_PROBE = `
const { AllowedIps } = await import(Deno.args[0]);
const kind = Deno.args[1];
const peers = Array.from({ length: 100 }, (_, i) => ({ i }));
const v4 = new Uint8Array(4), v6 = new Uint8Array(16);
let seed = 12345;
function next() {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed;
}
function build(rows) {
  const t = new AllowedIps();
  let n = 0;
  if (kind === "netns") {
    v4[0] = 192; v4[1] = 168; v6[0] = 0xab; v6[1] = 0xcd;
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j <= 255; j++) {
        v4[2] = i; v4[3] = j; t.insert(4, v4, 32, peers[0]);
        v6[13] = i; v6[15] = j; t.insert(6, v6, 128, peers[0]);
        n += 2;
      }
    }
  } else {
    for (let i = 0; i < rows * 512; i++) {
      const w = next();
      v4[0] = w >>> 24; v4[1] = w >>> 16; v4[2] = w >>> 8; v4[3] = w;
      t.insert(4, v4, next() % 33, peers[i % 100]);
      n++;
    }
  }
  return [t, n];
}
build(20); build(20); // compile the insert path before measuring
gc(); gc();
const m0 = Deno.memoryUsage();
const t0 = performance.now();
const [table, n] = build(255);
const ms = performance.now() - t0;
gc(); gc();
const m1 = Deno.memoryUsage();
// Used after the readings, so the table stays alive through gc(). Random
// prefixes repeat (a random /3 is one of 8), so count what the table holds.
let held = 0;
for (const p of peers) held += table.entriesFor(p).length;
console.log(JSON.stringify({
  kind, n: held, inserts: n, ms,
  heapPerPrefix: (m1.heapUsed + m1.external - m0.heapUsed - m0.external) / held,
  rssPerPrefix: (m1.rss - m0.rss) / held,
  rssMiB: m1.rss / 2 ** 20,
}));
`;

async function reportMemory(kind: "netns" | "random4"): Promise<void> {
  if ((await Deno.permissions.query({ name: "run" })).state !== "granted") return;
  const url = new URL("../src/allowedips.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", MEMORY_PROBE, url, kind],
    stdout: "piped",
    stderr: "inherit",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (!out.success) throw new Error(`Memory probe for ${kind} failed`);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  // deno-lint-ignore no-console
  console.log(
    `memory: ${r.n} ${kind} prefixes (${r.inserts} inserts): ` +
      `${r.heapPerPrefix.toFixed(1)} B/prefix heap+external, ` +
      `RSS +${r.rssPerPrefix.toFixed(1)} B/prefix (process RSS ${r.rssMiB.toFixed(1)} MiB), ` +
      `built in ${r.ms.toFixed(1)} ms`,
  );
}

await reportMemory("netns");
await reportMemory("random4");

const netns = netnsPrefixes();
if (netns.length !== 130_560) throw new Error(`Expected 130560 prefixes, got ${netns.length}`);

Deno.bench({
  name: "insert 130 560 prefixes (netns.sh, one peer)",
  group: "insert",
  baseline: true,
  n: 10,
  warmup: 2,
  fn() {
    build(netns, 1);
  },
});

const random4 = randomPrefixes(4, 130_560, 1);
Deno.bench({
  name: "insert 130 560 random IPv4 prefixes (100 peers)",
  group: "insert",
  n: 10,
  warmup: 2,
  fn() {
    build(random4, 100);
  },
});

const netnsTable = build(netns, 1);
const rnd = new RandomSource(seededRng(7));
const hits4 = queries(4, (_, q) => q.set([192, 168, rnd.int(255), rnd.int(256)]));
const misses4 = queries(4, (_, q) => q.set([10, rnd.int(256), rnd.int(256), rnd.int(256)]));
const hits6 = queries(16, (_, q) => {
  q[0] = 0xab;
  q[1] = 0xcd;
  q[13] = rnd.int(255);
  q[15] = rnd.int(256);
});
/** Lookup results are summed here so the JIT cannot drop the lookups. */
let sink = 0;

Deno.bench({
  name: "1024 IPv4 lookups, hits (netns table)",
  group: "lookup",
  baseline: true,
  fn() {
    for (let off = 0; off < hits4.length; off += 4) sink += netnsTable.lookup(4, hits4, off) ?? 1;
  },
});

Deno.bench({
  name: "1024 IPv4 lookups, misses (netns table)",
  group: "lookup",
  fn() {
    for (let off = 0; off < misses4.length; off += 4) {
      sink += netnsTable.lookup(4, misses4, off) ?? 1;
    }
  },
});

Deno.bench({
  name: "1024 IPv6 lookups, hits (netns table)",
  group: "lookup",
  fn() {
    for (let off = 0; off < hits6.length; off += 16) sink += netnsTable.lookup(6, hits6, off) ?? 1;
  },
});

const go4 = build(randomPrefixes(4, 1000, 2), 100);
const go6 = build(randomPrefixes(6, 1000, 3), 100);
const rand4 = queries(4, (_, q) => q.set(rnd.bytes(4)));
const rand6 = queries(16, (_, q) => q.set(rnd.bytes(16)));

Deno.bench({
  name: "1024 IPv4 lookups, 100 peers × 1000 random prefixes (go BenchmarkTrie)",
  group: "lookup",
  fn() {
    for (let off = 0; off < rand4.length; off += 4) sink += go4.lookup(4, rand4, off) ?? 1;
  },
});

Deno.bench({
  name: "1024 IPv6 lookups, 100 peers × 1000 random prefixes (go BenchmarkTrie)",
  group: "lookup",
  fn() {
    for (let off = 0; off < rand6.length; off += 16) sink += go6.lookup(6, rand6, off) ?? 1;
  },
});

Deno.bench({
  name: "removeByValue of 130 560 prefixes",
  group: "remove",
  n: 10,
  warmup: 2,
  fn(b) {
    const t = build(netns, 1);
    b.start();
    t.removeByValue(0);
    b.end();
  },
});
