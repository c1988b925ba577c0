// SPDX-License-Identifier: Apache-2.0
/**
 * Throughput of one TCP connection between two in-memory stacks on the fake
 * clock, at 0 %, 2 % and 5 % random loss each way (data and ACKs), averaged
 * over several seeds. Time is simulated, so the figures measure the
 * protocol (windows, loss recovery, timers), not the CPU.
 *
 *   deno run -A test/netstack/loss_throughput.ts [--mb 4] [--rtt 20] [--seeds 5] [--sack on|off]
 */
// deno-lint-ignore-file no-console
import { parseArgs } from "node:util";
import { pattern } from "./_link.ts";
import { transfer } from "./_transfer.ts";

const { values } = parseArgs({
  options: {
    mb: { type: "string", default: "4" },
    rtt: { type: "string", default: "20" },
    seeds: { type: "string", default: "5" },
    sack: { type: "string", default: "on" },
    loss: { type: "string", default: "0,0.02,0.05" },
  },
});
const bytes = Number(values.mb) * 1024 * 1024;
const latency = Number(values.rtt) / 2;
const seeds = Number(values.seeds);
const tcp: Record<string, unknown> = {};
if (values.sack === "off") tcp.sack = false;
const data = pattern(bytes, 11);
let base = 0;
for (const loss of values.loss.split(",").map(Number)) {
  let ms = 0;
  let rto = 0;
  let fast = 0;
  let rxt = 0;
  for (let seed = 1; seed <= seeds; seed++) {
    const r = transfer(data, { latency, loss, seed, tcp });
    if (!r.done || r.mismatch !== -1) throw new Error(`loss ${loss} seed ${seed}: failed`);
    ms += r.fakeMs;
    const st = r.l.a.stats;
    fast += st.tcpFastRetransmits;
    rxt += st.tcpRetransmits;
    rto += st.tcpRtoExpired;
  }
  const kbps = bytes * seeds / ms; // bytes per ms = KB/s (1000)
  if (loss === 0) base = kbps;
  console.log(
    `loss ${(loss * 100).toFixed(0)}%: ${(kbps / 1000).toFixed(2)} MB/s` +
      (base > 0 ? ` (${(kbps / base * 100).toFixed(0)}% of loss-free)` : "") +
      `, per run ${(ms / seeds / 1000).toFixed(2)} s, ${(rxt / seeds).toFixed(0)} retransmits, ` +
      `${(fast / seeds).toFixed(0)} recoveries, ${(rto / seeds).toFixed(0)} RTOs`,
  );
}
