// SPDX-License-Identifier: Apache-2.0
/**
 * Runs wireguard-go's own end-to-end script, `tests/netns.sh <program>`, against the program
 * under test (PROGRAM, see _util.ts). The script is not part of this repository: it is fetched
 * at test time into a temporary directory outside the repository and deleted afterwards.
 *
 * Where the script comes from, in order:
 *   1. `GOTATUN_E2E_NETNS_SH=/path/to/netns.sh`: a copy you already have (copied to the
 *      temporary directory, never modified in place).
 *   2. Debian's source package: `apt-get source --download-only wireguard-go`, then
 *      `dpkg-source -x` (applies Debian's patches; plain `tar` of the .orig tarball when
 *      dpkg-dev is missing). This needs a `deb-src` entry for the configured Debian mirror,
 *      e.g. /etc/apt/sources.list.d/<name>.sources with
 *      `Types: deb-src` / `URIs: http://deb.debian.org/debian` / `Suites: bookworm` /
 *      `Components: main` / `Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg`,
 *      and an `apt-get update`.
 * When neither works the test is ignored and the reason (apt's error) is printed.
 *
 * Isolation. The script uses fixed interface names (wg0, wg1, wg2), and the UAPI socket
 * directory is global, so it runs under `unshare --mount --pid --fork --kill-child
 * --mount-proc` with private tmpfs mounts on /run/wireguard and /run/netns: its sockets and
 * namespace names are invisible to the host and to other tests, and when the script ends or
 * is killed on timeout, the kernel kills every process it started (the PID namespace dies
 * with its init) and its network namespaces go with them. It writes the global sysctl
 * net.core.message_cost and restores it itself; we restore it too in case it was killed.
 *
 * Adjustments made to the temporary copy (each one is logged):
 *   - `-n 1G` iperf3 transfers become `-n 50M` (GOTATUN_E2E_UPSTREAM_SIZE), unless
 *     GOTATUN_E2E_BIG=1, to keep the whole e2e suite well under 15 minutes on 2 cores.
 *   - Only when PROGRAM is wireguard-go ≤ v0.0.20220316: after the script deletes the address
 *     that wg1's sticky source was using, the endpoint is set again. That version only drops
 *     a stale source on EINVAL, and current kernels return ENETUNREACH (see netns_test.ts),
 *     so the unmodified script fails at that point with Debian 12's wireguard-go.
 *   - Only for that wireguard-go: the program handed to the script is a wrapper that runs it
 *     and then waits (`wg show IFNAME`) until the forked daemon answers. That version's
 *     launcher exits before its daemon has adopted the TUN, and the script moves the link to
 *     another namespace right away, so about one run in three lost a daemon here.
 *
 * Result: passed iff the script exits 0 and printed its last line ("Objects that were created
 * were also destroyed."); on failure the step that failed (the last `[+]` line) and the tail
 * of the output are reported.
 *
 * Root only. Without root, tools or a program under test it is ignored (reason printed), or
 * fails under CI=true (test/_util/needs.ts); without the script it is ignored with the reason
 * printed, CI or not.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BIG, log, removeDir, skipReason, tempDir } from "./_util.ts";
import { program } from "../_util/wg.ts";
import { run, runOk, which } from "../_util/proc.ts";
import { skipBecause } from "../_util/needs.ts";

const SIZE = Deno.env.get("GOTATUN_E2E_UPSTREAM_SIZE") ?? "50M";
const TIMEOUT_MS = BIG ? 3_600_000 : 600_000;

/** Where the script was found, or why not. */
interface Acquired {
  dir: string | null;
  script: string | null;
  origin: string;
  reason: string;
}

function lastErrorLine(text: string): string {
  const lines = text.split("\n").filter((l) => /^E: /.test(l));
  return lines.length ? lines.join("; ") : text.trim().split("\n").slice(-2).join("; ");
}

/** Fetches tests/netns.sh into a new temporary directory (see the module doc). */
async function acquire(): Promise<Acquired> {
  const dir = await tempDir();
  const given = Deno.env.get("GOTATUN_E2E_NETNS_SH");
  if (given) {
    await Deno.mkdir(`${dir}/tests`);
    await Deno.copyFile(given, `${dir}/tests/netns.sh`);
    return { dir, script: `${dir}/tests/netns.sh`, origin: given, reason: "" };
  }
  if (!which("apt-get")) {
    return { dir, script: null, origin: "", reason: "no GOTATUN_E2E_NETNS_SH and no apt-get" };
  }
  const dl = await run("apt-get", ["source", "--download-only", "wireguard-go"], {
    cwd: dir,
    timeoutMs: 180_000,
  });
  if (dl.code !== 0) {
    return {
      dir,
      script: null,
      origin: "",
      reason: `apt-get source wireguard-go failed: ${lastErrorLine(dl.stdout + dl.stderr)}`,
    };
  }
  const files = [...Deno.readDirSync(dir)].map((e) => e.name);
  const dsc = files.find((f) => f.endsWith(".dsc"));
  const orig = files.find((f) => /\.orig\.tar\./.test(f));
  if (dsc && which("dpkg-source")) {
    await runOk("dpkg-source", ["--no-check", "-x", dsc, "src"], { cwd: dir, timeoutMs: 60_000 });
  } else if (orig) {
    await Deno.mkdir(`${dir}/src`);
    await runOk("tar", ["-xf", orig, "-C", "src", "--strip-components=1"], {
      cwd: dir,
      timeoutMs: 60_000,
    });
  } else {
    return { dir, script: null, origin: "", reason: `no source archive among ${files.join(" ")}` };
  }
  const script = `${dir}/src/tests/netns.sh`;
  try {
    Deno.statSync(script);
  } catch {
    return { dir, script: null, origin: "", reason: `${dsc ?? orig} has no tests/netns.sh` };
  }
  return { dir, script, origin: `Debian source package ${dsc ?? orig}`, reason: "" };
}

let acquired: Acquired = { dir: null, script: null, origin: "", reason: "" };
let SKIP = skipReason("upstream_netns_test.ts", [
  "bash",
  "ip",
  "wg",
  "iperf3",
  "ncat",
  "ping",
  "ss",
  "iptables",
  "unshare",
  "mount",
]);
if (SKIP === "") {
  acquired = await acquire();
  if (!acquired.script) {
    // The one skip that stays one under CI=true: the script is not ours and may be absent.
    SKIP = `no copy of wireguard-go's tests/netns.sh: ${acquired.reason}`;
    await removeDir(acquired.dir);
    skipBecause("test/e2e/upstream_netns_test.ts", SKIP);
  }
}

/** wireguard-go ≤ v0.0.20220316 (see the module doc). */
async function isOldWireguardGo(prog: string): Promise<boolean> {
  const r = await run(prog, ["--version"], { timeoutMs: 10_000 });
  const m = /^wireguard-go v0\.0\.(\d{8})/.exec(r.stdout);
  return m !== null && Number(m[1]) <= 20220316;
}

/**
 * Applies the documented adjustments to the temporary copy. Returns what was changed and the
 * program to hand to the script (a readiness wrapper for old wireguard-go, else PROGRAM).
 */
async function adjust(
  dir: string,
  script: string,
  prog: string,
): Promise<{ notes: string[]; runProgram: string }> {
  let text = await Deno.readTextFile(script);
  const notes: string[] = [];
  let runProgram = prog;
  if (!BIG) {
    const n = text.split(" -n 1G ").length - 1;
    if (n > 0) {
      text = text.replaceAll(" -n 1G ", ` -n ${SIZE} `);
      notes.push(`${n} iperf3 commands (each run 4 times) reduced from -n 1G to -n ${SIZE}`);
    }
  }
  if (await isOldWireguardGo(prog)) {
    const line = "ip1 addr del 10.0.0.1/24 dev veth1\n";
    if (text.includes(line)) {
      text = text.replace(line, `${line}n0 wg set wg1 peer "$pub2" endpoint 10.0.0.2:20000\n`);
      notes.push("wireguard-go ≤ 0.0.20220316: endpoint set again after its source was deleted");
    }
    // Its launcher exits before the forked daemon has adopted the TUN; when the script moves
    // the link to another namespace in that window, the daemon fails ("Failed to create TUN
    // device: no such device") or keeps a wrong MTU. `wg show` blocks until the daemon
    // accepts on the UAPI socket, which it does only once set up.
    runProgram = `${dir}/program-ready`;
    await Deno.writeTextFile(
      runProgram,
      `#!/bin/bash\n"${prog}" "$@" || exit\nexec timeout 20 wg show "\${@: -1}" >/dev/null\n`,
      { mode: 0o755 },
    );
    notes.push("wireguard-go ≤ 0.0.20220316: launcher wrapped to wait until the daemon answers");
  }
  await Deno.writeTextFile(script, text);
  return { notes, runProgram };
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

Deno.test({
  name: "upstream wireguard-go tests/netns.sh passes against PROGRAM",
  ignore: SKIP !== "",
  async fn() {
    const prog = program();
    const script = acquired.script!;
    const messageCost = await Deno.readTextFile("/proc/sys/net/core/message_cost");
    try {
      log(`script: ${acquired.origin}`);
      const { notes, runProgram } = await adjust(acquired.dir!, script, prog);
      for (const note of notes) log(`adjusted: ${note}`);
      assert.equal(
        (await run("bash", ["-n", script], { timeoutMs: 30_000 })).code,
        0,
        "bad script",
      );
      const t0 = Date.now();
      const r = await run("unshare", [
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
        "bash",
        "-c",
        'mkdir -p /run/netns /run/wireguard && mount -t tmpfs gte2e-netns /run/netns && mount -t tmpfs gte2e-wg /run/wireguard && cd "$0" && exec bash tests/netns.sh "$1"',
        acquired.dir!,
        runProgram,
      ], { timeoutMs: TIMEOUT_MS });
      const out = (r.stdout + r.stderr).replace(ANSI, "");
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      const steps = out.split("\n").filter((l) => l.startsWith("[+] "));
      const done = out.includes("Objects that were created were also destroyed.");
      log(`netns.sh exited ${r.code} after ${secs} s, ${steps.length} steps`);
      if (r.code !== 0 || !done) {
        const last = steps.at(-1) ?? "(none)";
        const tail = out.split("\n").slice(-40).join("\n");
        assert.fail(`netns.sh failed (exit ${r.code}) at step: ${last}\n--- tail\n${tail}`);
      }
    } finally {
      await Deno.writeTextFile("/proc/sys/net/core/message_cost", messageCost).catch(() => {});
      await removeDir(acquired.dir);
    }
  },
});
