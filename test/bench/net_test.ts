// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Smoke test of the network benchmark (net.ts): it runs the real harness in
 * `--quick --only ping` mode, under a hard time bound, and checks only that
 * it finished and produced a table and numbers for both implementations; no
 * assertion is made on any timing. Root only; ignored without root, without
 * the tools, or without dist/gotatun (`deno task build`). Plus pure tests of
 * the option parsing and the statistics.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { hasTool, isRoot, run } from "../_util/proc.ts";
import { parseOptions } from "./net.ts";
import { markdownTable, quantile, Recorder, svgChart, verdict } from "./_report.ts";

const REPO = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const SCRIPT = new URL("./net.ts", import.meta.url).pathname;

function skipReason(): string {
  if (Deno.build.os !== "linux") return "not Linux";
  if (!isRoot()) return "not root";
  if (!existsSync(`${REPO}/dist/gotatun`)) return "dist/gotatun missing (deno task build)";
  if (!existsSync("/usr/bin/wireguard-go")) return "/usr/bin/wireguard-go missing";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun missing";
  const missing = ["ip", "wg", "iperf3", "ping", "ss", "getconf"].filter((t) => !hasTool(t));
  return missing.length > 0 ? `missing ${missing.join(", ")}` : "";
}

const SKIP = skipReason();

Deno.test({
  name: "net.ts --quick --only ping prints a table with numbers for both implementations",
  ignore: SKIP !== "",
  async fn() {
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
      assert.match(r.stdout, /^\| metric \| unit \| gotatun \| wireguard-go \|/m);
      assert.match(r.stdout, /^\| ping RTT p50 \| ms \| \*\*[\d.]+\*\* \| \*\*[\d.]+\*\* \|/m);
      assert.match(r.stderr, /\[\d+\/\d+\] gotatun ping/);
      const doc = JSON.parse(await Deno.readTextFile(json));
      for (const impl of ["gotatun", "wireguard-go"]) {
        const s = doc.metrics.ping_p50[impl];
        assert.ok(s && Number.isFinite(s.median) && s.median > 0, `${impl}: ${JSON.stringify(s)}`);
      }
      // Nothing of ours may be left behind.
      const ns = await run("ip", ["netns", "list"], { timeoutMs: 10_000 });
      assert.doesNotMatch(ns.stdout, /^gtbench-/m);
    } finally {
      await Deno.remove(json).catch(() => {});
    }
  },
});

Deno.test("parseOptions() defaults, --quick, --only and --impl", () => {
  const d = parseOptions([])!;
  assert.equal(d.rounds, 5);
  assert.deepEqual(d.impls.map((i) => i.name), ["gotatun", "wireguard-go"]);
  assert.equal(d.only.size, 5);
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
  assert.throws(() => rec.add("nope", "a", 1), /unknown metric/);
  const svg = svgChart(rec, "t");
  assert.match(svg, /^<svg /);
  assert.match(svg, /TCP 1 stream/);
});
