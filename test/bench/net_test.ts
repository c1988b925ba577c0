// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Smoke test of the network benchmark (net.ts): it runs the real harness in
 * `--quick --only ping` mode, under a hard time bound, and checks only that
 * it finished and produced a table and numbers for both implementations; no
 * assertion is made on any timing. Root only; ignored (outside CI) without
 * root, the tools, dist/gotatun (`deno task build`) or a wireguard-go. Plus pure tests of
 * the option parsing and the statistics.
 */
import assert from "node:assert/strict";
import { run } from "../_util/proc.ts";
import { ignoreUnless } from "../_util/needs.ts";
import { parseOptions } from "./net.ts";
import { markdownTable, quantile, Recorder, svgChart, verdict } from "./_report.ts";
import { countGc, runtimeOf } from "./_gc.ts";
import { pingStats, pingTimes } from "./_latency.ts";
import { ctxSwitches, delta } from "./_idle.ts";
import { candidatePaths, compareVersions, label, versionOf } from "./_impls.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const SCRIPT = new URL("./net.ts", import.meta.url).pathname;

/** What the smoke test needs (test/_util/needs.ts: under CI=true a missing one fails). */
const IGNORE = ignoreUnless("test/bench/net_test.ts", {
  root: true,
  tun: true,
  tools: ["ip", "wg", "iperf3", "ping", "ss", "getconf"],
  files: [`${REPO}/dist/gotatun`],
  other: { "a wireguard-go to compare with": candidatePaths().length > 0 },
});

async function benchNamespaces(): Promise<Set<string>> {
  const r = await run("ip", ["netns", "list"], { timeoutMs: 10_000 });
  return new Set(
    r.stdout.split("\n").map((l) => l.split(" ")[0]).filter((n) => n.startsWith("gtbench-")),
  );
}

Deno.test({
  name: "net.ts --quick --only ping prints a table with numbers for both implementations",
  ignore: IGNORE,
  async fn() {
    const before = await benchNamespaces();
    const json = await Deno.makeTempFile({ prefix: "gtbench-test-", suffix: ".json" });
    try {
      const r = await run(Deno.execPath(), [
        "run",
        "-A",
        "--no-prompt",
        SCRIPT,
        "--quick",
        "--only",
        "ping",
        "--json",
        json,
      ], { timeoutMs: 180_000, cwd: REPO, env: { NO_COLOR: "1" } });
      assert.equal(r.timedOut, false, "the harness did not finish in 180 s");
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.match(r.stdout, /^\| metric \| unit \| gotatun [\d.]+ \| wireguard-go [\d.]+ \|/m);
      for (const p of ["p50", "p99", "p999"]) {
        const row = new RegExp(
          `^\\| ping RTT ${p} \\| ms \\| \\*\\*[\\d.]+\\*\\* \\| \\*\\*[\\d.]+\\*\\* \\|`,
          "m",
        );
        assert.match(r.stdout, row);
      }
      assert.match(r.stdout, /, nproc \d+; kernel /);
      assert.match(r.stderr, /\[\d+\/\d+\] gotatun ping/);
      const doc = JSON.parse(await Deno.readTextFile(json));
      for (const impl of ["gotatun", "wireguard-go"]) {
        const s = doc.metrics.ping_p50[impl];
        assert.ok(s && Number.isFinite(s.median) && s.median > 0, `${impl}: ${JSON.stringify(s)}`);
      }
      // Nothing of ours may be left behind (other runs' namespaces are not ours).
      const left = [...await benchNamespaces()].filter((n) => !before.has(n));
      assert.deepEqual(left, []);
    } finally {
      await Deno.remove(json).catch(() => {});
    }
  },
});

Deno.test("parseOptions() defaults, --quick, --only, --impl, --pinned and --extra", () => {
  const d = parseOptions([])!;
  assert.equal(d.rounds, 5);
  assert.deepEqual(d.impls.map((i) => i.name), ["gotatun", "wireguard-go"]);
  assert.equal(d.only.size, 9);
  const q = parseOptions(["--quick", "--only", "ping,tcp"])!;
  assert.equal(q.rounds, 1);
  assert.deepEqual([...q.only], ["ping", "tcp"]);
  const i = parseOptions(["--impl", "gotatun=/usr/bin/wireguard-go"])!;
  assert.deepEqual(i.impls, [
    { name: "gotatun", path: "/usr/bin/wireguard-go" },
    { name: "wireguard-go", path: "/usr/bin/wireguard-go" },
  ]);
  const two = parseOptions(["--impl", "x=/a,y=/b", "--rounds", "3"])!;
  assert.deepEqual(two.impls.map((i) => i.name), ["x", "y"]);
  assert.equal(two.rounds, 3);
  assert.equal(parseOptions(["--help"]), null);
  assert.throws(() => parseOptions(["--only", "nope"]), /unknown group/);
  assert.throws(() => parseOptions(["--rounds", "0"]), /--rounds/);
  assert.throws(() => parseOptions(["--impl", "x=/a"]), /--impl/);
  assert.equal(parseOptions([], "/opt/wg")!.impls[1].path, "/opt/wg");
  assert.equal(d.pinned, false);
  assert.equal(parseOptions(["--pinned"])!.pinned, true);
  const e = parseOptions(["--extra", "old=/usr/bin/wireguard-go"], "/new")!;
  assert.deepEqual(e.impls.map((i) => [i.name, i.path]), [
    ["gotatun", `${REPO}/dist/gotatun`],
    ["wireguard-go", "/new"],
    ["old", "/usr/bin/wireguard-go"],
  ]);
  assert.throws(() => parseOptions(["--extra", "gotatun=/x"]), /taken/);
  assert.throws(() => parseOptions(["--extra", "x"]), /--extra: expected NAME=PATH/);
});

Deno.test("versions: parsed from --version lines, compared numerically, put in labels", () => {
  assert.equal(versionOf("wireguard-go v0.0.20250522"), "0.0.20250522");
  assert.equal(versionOf("gotatun v0.1.0"), "0.1.0");
  assert.equal(versionOf("?"), "");
  assert.ok(compareVersions("0.0.20250522", "0.0.20231211") > 0);
  assert.ok(compareVersions("0.0.9", "0.0.10") < 0);
  assert.ok(compareVersions("", "0.0.1") < 0);
  assert.equal(compareVersions("1.2", "1.2"), 0);
  assert.equal(label("wireguard-go", "wireguard-go v0.0.20220316"), "wireguard-go 0.0.20220316");
  assert.equal(label("wg-0.0.1", "wireguard-go v0.0.1"), "wg-0.0.1");
  assert.equal(label("x", "?"), "x");
});

Deno.test("countGc() counts V8 --trace-gc and Go gctrace lines by kind", () => {
  const text = [
    "[77:0x55cfb333a000]       17 ms: Scavenge 3.4 (4.4) -> 3.0 (5.2) MB, pooled: 0.0 MB, " +
    "1.41 / 0.00 ms (average mu = 1.000, current mu = 1.000) allocation failure; ",
    "[77:0x7fc480060000]       14 ms: Scavenge 4.0 (5.8) -> 3.3 (6.0) MB, 0.41 / 0.00 ms",
    "[77:0x55cfb333a000]       64 ms: Incremental Mark-Compact 46.4 (54.2) -> 9.6 (19.0) MB",
    "[77:0x55cfb333a000]       90 ms: Mark-Compact (reduce) 9.6 (19.0) -> 9.0 (12.0) MB",
    "[77:0x55cfb333a000]       95 ms: Minor Mark-Sweep 5.0 (6.0) -> 4.0 (6.0) MB",
    "gc 1 @0.012s 2%: 0.010+0.5+0.003 ms clock, 0.020+0.1/0.4/0+0.006 ms cpu, 4->4->1 MB",
    "scvg: 0 MB released",
    "READY",
    "",
  ].join("\n");
  assert.deepEqual(countGc(text), { young: 3, full: 3 });
  assert.deepEqual(countGc(""), { young: 0, full: 0 });
  assert.equal(runtimeOf("gotatun v0.1.0"), "v8");
  assert.equal(runtimeOf("wireguard-go v0.0.20250522"), "go");
  assert.equal(runtimeOf("?"), "");
});

Deno.test("pingTimes() and pingStats(): p50, p99, p999 of the replies", () => {
  const out = "PING 10.241.0.2 (10.241.0.2) 56(84) bytes of data.\n" +
    "64 bytes from 10.241.0.2: icmp_seq=1 ttl=64 time=0.412 ms\n" +
    "64 bytes from 10.241.0.2: icmp_seq=3 ttl=64 time=1.50 ms\n" +
    "--- 10.241.0.2 ping statistics ---\nrtt min/avg/max/mdev = 0.412/0.956/1.500/0.544 ms\n";
  assert.deepEqual(pingTimes(out), [0.412, 1.5]);
  const times = Array.from({ length: 1001 }, (_, i) => i);
  const s = pingStats(times);
  assert.equal(s.p50, 500);
  assert.equal(s.p99, 990);
  assert.equal(s.p999, 999);
  assert.equal(s.received, 1001);
  assert.throws(() => pingStats([]), /no ping replies/);
});

Deno.test("ctxSwitches() and delta() of per-thread counters", () => {
  const status = "Name:\tdeno\nvoluntary_ctxt_switches:\t408\nnonvoluntary_ctxt_switches:\t32\n";
  assert.equal(ctxSwitches(status), 440);
  assert.ok(Number.isNaN(ctxSwitches("Name:\tdeno\n")));
  const before = new Map([["1", { cpuNs: 100, ctxSwitches: 10 }], ["2", {
    cpuNs: 5,
    ctxSwitches: 1,
  }]]);
  // Thread 2 ended (its counts are gone), thread 3 is new (all its counts are in the window).
  const after = new Map([["1", { cpuNs: 150, ctxSwitches: 12 }], ["3", {
    cpuNs: 7,
    ctxSwitches: 2,
  }]]);
  assert.deepEqual(delta(before, after), { cpuNs: 57, ctxSwitches: 4 });
});

Deno.test("quantile() interpolates between ranks and ignores non-finite values", () => {
  assert.equal(quantile([3, 1, 2], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4, NaN], 1), 4);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

Deno.test("Recorder medians, ratios and the table", () => {
  const rec = new Recorder(["a", "b"]);
  for (const v of [100, 300, 200]) rec.add("tcp1", "a", v);
  for (const v of [100, 100, 100]) rec.add("tcp1", "b", v);
  rec.add("ping_p50", "a", 1);
  assert.equal(rec.summary("tcp1", "a")?.median, 200);
  assert.equal(rec.ratio("tcp1"), 2);
  assert.ok(Number.isNaN(rec.ratio("ping_p50")));
  assert.equal(verdict(2, "higher"), "better");
  assert.equal(verdict(2, "lower"), "worse");
  assert.equal(verdict(1.1, "lower"), "≈ (noise)");
  const table = markdownTable(rec);
  assert.match(
    table,
    /\| TCP 1 stream \| Mbit\/s \| \*\*200\*\* \[100–300\] \| \*\*100\*\* \[100–100\] \| 2\.00 \|/,
  );
  assert.match(table, /\| ping RTT p50 \| ms \| \*\*1\.000\*\* \| — \|/);
  // Labels head the columns; a third implementation is a column without a ratio of its own.
  const three = new Recorder(["a", "b", "c"], ["a 1.0", "b 2.0", "c 0.9"]);
  three.add("tcp1", "a", 2);
  three.add("tcp1", "b", 1);
  three.add("tcp1", "c", 4);
  const t3 = markdownTable(three);
  assert.match(t3, /^\| metric \| unit \| a 1\.0 \| b 2\.0 \| c 0\.9 \| ratio a\/b \|/);
  assert.match(t3, /\| TCP 1 stream \| Mbit\/s \| \*\*2\*\* \| \*\*1\*\* \| \*\*4\*\* \| 2\.00 \|/);
  assert.throws(() => rec.add("nope", "a", 1), /unknown metric/);
  const svg = svgChart(rec, "t");
  assert.match(svg, /^<svg /);
  assert.match(svg, /TCP 1 stream/);
});
