// SPDX-License-Identifier: Apache-2.0
// `gotatun forward`: argument parsing, the help, and the command end to end
// as two child processes on loopback UDP (as an ordinary user runs them): A
// forwards a local TCP port into the tunnel (-L), B forwards its tunnel port
// to a loopback echo server of this test (-R).
import assert from "node:assert/strict";
import {
  FORWARD_OPTIONS,
  FORWARD_USAGE,
  parseForwardArgs,
  parseForwardSpec,
} from "../../cli/forward.ts";
import { helpText } from "../../cli/args.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToBase64 } from "../../src/keys.ts";
import { MAIN, spawnGotatun, stopGotatun } from "./_cli.ts";

Deno.test("forward args: -L with and without BIND, IPv6 in brackets, /udp, -R, several at once", () => {
  const cmd = parseForwardArgs([
    "-L",
    "8080:10.0.0.2:80",
    "-L",
    "[::1]:5353:[fd00::2]:53/udp",
    "--local=0.0.0.0:8443:10.0.0.2:443/tcp",
    "-R2222:127.0.0.1:22",
    "--remote",
    "5353:localhost:53/udp",
    "wg0.conf",
  ]);
  assert.ok(typeof cmd === "object");
  assert.equal(cmd.config, "wg0.conf");
  assert.equal(cmd.udpTimeoutMs, 60_000);
  assert.equal(cmd.maxConnections, 256);
  assert.deepEqual(
    cmd.forwards.map((f) => [f.direction, f.proto, f.listen, f.target]),
    [
      ["local", "tcp", { hostname: "127.0.0.1", port: 8080 }, { hostname: "10.0.0.2", port: 80 }],
      ["local", "udp", { hostname: "::1", port: 5353 }, { hostname: "fd00::2", port: 53 }],
      ["local", "tcp", { hostname: "0.0.0.0", port: 8443 }, { hostname: "10.0.0.2", port: 443 }],
      ["remote", "tcp", { hostname: "", port: 2222 }, { hostname: "127.0.0.1", port: 22 }],
      ["remote", "udp", { hostname: "", port: 5353 }, { hostname: "127.0.0.1", port: 53 }],
    ],
  );
  // TCP -R targets may be names (the OS resolves them); a local port 0 is ephemeral.
  const r = parseForwardSpec("80:localhost:8080", "remote");
  assert.ok(typeof r === "object" && r.target.hostname === "localhost");
  // A TCP target may be a name (resolved through the tunnel when a client connects).
  const named = parseForwardSpec("8080:intranet.example:80", "local");
  assert.ok(typeof named !== "string", String(named));
  assert.deepEqual(named.target, { hostname: "intranet.example", port: 80 });
  const z = parseForwardSpec("0:10.0.0.2:80", "local");
  assert.ok(typeof z === "object" && z.listen.port === 0);
  const opts = parseForwardArgs([
    "--udp-timeout",
    "2.5",
    "--max-conns=10",
    "-L",
    "1:1.2.3.4:5",
    "c",
  ]);
  assert.ok(typeof opts === "object");
  assert.equal(opts.udpTimeoutMs, 2500);
  assert.equal(opts.maxConnections, 10);
  assert.equal(parseForwardArgs(["-h"]), "help");
  assert.equal(parseForwardArgs(["-L", "1:1.2.3.4:5", "--help", "c"]), "help");
});

Deno.test("forward args: each error names the argument and says what to write", async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ["-L", "8080:example.com:53/udp", "c"],
      /-L 8080:example\.com:53\/udp: HOST "example\.com" must be an IP address.*for \/udp.*e\.g\. -L 8080:10\.0\.0\.2:80/,
    ],
    [
      ["-L", "8080:bad_name!:80", "c"],
      /-L 8080:bad_name!:80: bad HOST "bad_name!" \(an address on the tunnel side/,
    ],
    [
      ["-L", "::1:8080:10.0.0.2:80", "c"],
      /-L ::1:8080:10\.0\.0\.2:80: too many colons \(write IPv6 addresses in brackets/,
    ],
    [["-L", "8080:10.0.0.2", "c"], /-L 8080:10\.0\.0\.2: expected \[BIND:\]PORT:HOST:HOSTPORT/],
    [["-L", "70000:10.0.0.2:80", "c"], /bad PORT "70000" \(0 to 65535\)/],
    [["-L", "80:10.0.0.2:0", "c"], /bad HOSTPORT "0" \(1 to 65535\)/],
    [["-L", "80:10.0.0.2:53/sctp", "c"], /unknown protocol "\/sctp" \(use \/tcp or \/udp\)/],
    [["-L", "[::1:80:10.0.0.2:53", "c"], /unclosed \[/],
    [["-L", "b@d:80:10.0.0.2:53", "c"], /bad BIND address "b@d"/],
    [
      ["-R", "127.0.0.1:80:10.0.0.2:53", "c"],
      /-R .*no BIND for -R.*e\.g\. -R 2222:127\.0\.0\.1:22/,
    ],
    [["-R", "0:127.0.0.1:22", "c"], /bad PORT "0" \(1 to 65535\)/],
    [
      ["-R", "53:example.com:53/udp", "c"],
      /HOST "example\.com" must be an IP address or localhost for \/udp/,
    ],
    [["-L"], /-L needs a value/],
    [["-L", "80:10.0.0.2:80"], /missing CONFIG-FILE/],
    [["-L", "80:10.0.0.2:80", "a", "b"], /one CONFIG-FILE expected, got "a", "b"/],
    [["c"], /nothing to forward: give at least one -L or -R/],
    [
      ["-L", "80:10.0.0.2:80", "-L", "80:10.0.0.3:80", "c"],
      /-L 80:10\.0\.0\.3:80 listens where -L 80:10\.0\.0\.2:80 already does/,
    ],
    [["--udp-timeout", "0", "-L", "1:1.2.3.4:5", "c"], /--udp-timeout "0": give seconds/],
    [["--max-conns", "x", "-L", "1:1.2.3.4:5", "c"], /--max-conns "x": give a whole number/],
    [["--socks", "1", "c"], /unknown option "--socks" \(see gotatun forward --help\)/],
  ];
  for (const [args, re] of cases) {
    await t.step(args.join(" "), () => {
      const r = parseForwardArgs(args);
      assert.equal(typeof r, "string");
      assert.match(r as string, re);
      assert.match(r as string, /^gotatun forward: /);
    });
  }
  // The same port for TCP and UDP, or here and on the tunnel, is no conflict.
  assert.equal(
    typeof parseForwardArgs([
      "-L",
      "53:10.0.0.2:53",
      "-L",
      "53:10.0.0.2:53/udp",
      "-R",
      "53:127.0.0.1:53",
      "c",
    ]),
    "object",
  );
});

Deno.test("forward usage lists every option; gotatun help lists forward", () => {
  for (const o of FORWARD_OPTIONS) {
    assert.match(FORWARD_USAGE, new RegExp(`(^|[ ,])${o}[ ,\\n]`, "m"), o);
  }
  const help = helpText("gotatun");
  assert.match(help, /gotatun forward \[-L \[BIND:\]PORT:HOST:PORT\[\/udp\]\]\.\.\. \[-R /);
  assert.match(help, /^ {2}forward {12}a tunnel inside this process/m);
});

/** Reads lines from a child's stdout until `n` lines have come; returns them. */
async function readLines(r: ReadableStreamDefaultReader<string>, n: number): Promise<string[]> {
  let text = "";
  while (text.split("\n").length <= n) {
    const { value, done } = await r.read();
    if (done) break;
    text += value;
  }
  return text.split("\n").slice(0, n);
}

Deno.test("forward command: -L in one process, -R in another, a TCP echo through both over loopback UDP", async () => {
  const dir = await Deno.makeTempDir();
  const ka = generatePrivateKey(systemRng), kb = generatePrivateKey(systemRng);
  // B's WireGuard port: a random high port (this test cannot probe UDP without --unstable-net).
  const bPort = 20000 + Math.floor(Math.random() * 40000);
  await Deno.writeTextFile(
    `${dir}/a.conf`,
    `[Interface]\nPrivateKey = ${keyToBase64(ka)}\nAddress = 10.9.0.1/24\n` +
      `[Peer]\nPublicKey = ${keyToBase64(publicKey(kb))}\nAllowedIPs = 10.9.0.0/24\n` +
      `Endpoint = 127.0.0.1:${bPort}\n`,
  );
  await Deno.writeTextFile(
    `${dir}/b.conf`,
    `[Interface]\nPrivateKey = ${keyToBase64(kb)}\nAddress = 10.9.0.2/24\nListenPort = ${bPort}\n` +
      `[Peer]\nPublicKey = ${keyToBase64(publicKey(ka))}\nAllowedIPs = 10.9.0.1/32\n`,
  );
  // The echo server behind B's -R: sends back what it read, then FIN.
  const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const echoing = (async () => {
    for await (const c of echo) {
      const buf = new Uint8Array(65536);
      let n: number | null;
      while ((n = await c.read(buf)) !== null) await c.write(buf.subarray(0, n));
      await c.closeWrite();
      c.close();
    }
  })();
  const b = spawnGotatun(["forward", "-R", `7000:127.0.0.1:${echo.addr.port}`, `${dir}/b.conf`]);
  const a = spawnGotatun(["forward", "-L", "127.0.0.1:0:10.9.0.2:7000", `${dir}/a.conf`]);
  try {
    const bOut = b.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const [bLine] = await readLines(bOut, 1);
    assert.match(bLine, /^forwarding tunnel port 7000\/tcp \(10\.9\.0\.2\) -> 127\.0\.0\.1:\d+$/);
    const aOut = a.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const [aLine] = await readLines(aOut, 1);
    const m = /^forwarding 127\.0\.0\.1:(\d+)\/tcp -> 10\.9\.0\.2:7000 through the tunnel$/.exec(
      aLine,
    );
    assert.ok(m, aLine);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(m[1]) });
    const msg = new TextEncoder().encode("through two gotatun forwards");
    await conn.write(msg);
    await conn.closeWrite();
    const got: number[] = [];
    const buf = new Uint8Array(1024);
    let n: number | null;
    while ((n = await conn.read(buf)) !== null) got.push(...buf.subarray(0, n));
    conn.close();
    assert.deepEqual(new Uint8Array(got), msg);
    aOut.releaseLock();
    bOut.releaseLock();
    assert.equal(await stopGotatun(a), 0);
    assert.equal(await stopGotatun(b), 0);
  } finally {
    await stopGotatun(a);
    await stopGotatun(b);
    echo.close();
    await echoing.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("forward command: a bad option or a taken port exits 1 naming it", async () => {
  const dir = await Deno.makeTempDir();
  const cfg = `${dir}/t.conf`;
  await Deno.writeTextFile(
    cfg,
    `[Interface]\nPrivateKey = ${keyToBase64(generatePrivateKey(systemRng))}\n` +
      `Address = 10.9.0.1/24\n[Peer]\nPublicKey = ${
        keyToBase64(publicKey(generatePrivateKey(systemRng)))
      }\nAllowedIPs = 10.9.0.0/24\nEndpoint = 127.0.0.1:9\n`,
  );
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const run = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--unstable-net", "-A", MAIN, "forward", ...args],
      }).output();
      return { code: out.code, err: new TextDecoder().decode(out.stderr) };
    };
    const bad = await run(["-L", "8080:example.com:53/udp", cfg]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.err,
      /-L 8080:example\.com:53\/udp: HOST "example\.com" must be an IP address/,
    );
    const busy = await run(["-L", `${taken.addr.port}:10.9.0.2:80`, cfg]);
    assert.equal(busy.code, 1);
    assert.match(
      busy.err,
      new RegExp(
        `-L ${taken.addr.port}:10\\.9\\.0\\.2:80: cannot listen on 127\\.0\\.0\\.1:${taken.addr.port}/tcp`,
      ),
    );
    const missing = await run(["-L", "1:10.9.0.2:80", `${dir}/nope.conf`]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /gotatun forward: .*nope\.conf: /);
    const help = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "forward", "--help"],
    }).output();
    assert.equal(help.code, 0);
    assert.equal(new TextDecoder().decode(help.stdout), FORWARD_USAGE);
  } finally {
    taken.close();
    await Deno.remove(dir, { recursive: true });
  }
});
