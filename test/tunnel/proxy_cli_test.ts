// SPDX-License-Identifier: Apache-2.0
// `gotatun proxy`: argument parsing, and the command as a child process (as
// an ordinary user needs it: UDP sockets, no TUN) answering SOCKS5.
import assert from "node:assert/strict";
import {
  loadAuthFile,
  parseListenAddress,
  parseProxyArgs,
  PROXY_HELP,
  PROXY_OPTIONS,
  PROXY_USAGE,
} from "../../cli/proxy.ts";
import { helpText } from "../../cli/args.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToBase64 } from "../../src/keys.ts";
import { spawnGotatun } from "./_cli.ts";

Deno.test("proxy args: loopback 1080 by default, --socks PORT, HOST:PORT, [V6]:PORT", () => {
  assert.deepEqual(parseProxyArgs(["wg.conf"]), {
    config: "wg.conf",
    socks: { hostname: "127.0.0.1", port: 1080 },
    http: null,
    auth: null,
    uapi: null,
  });
  assert.deepEqual(parseProxyArgs(["--socks", "9050", "c"]), {
    config: "c",
    socks: { hostname: "127.0.0.1", port: 9050 },
    http: null,
    auth: null,
    uapi: null,
  });
  assert.deepEqual(parseListenAddress("0.0.0.0:1"), { hostname: "0.0.0.0", port: 1 });
  assert.deepEqual(parseListenAddress("[::1]:1080"), { hostname: "::1", port: 1080 });
  assert.equal(parseListenAddress("::1:1080"), null);
  assert.equal(parseListenAddress("host:70000"), null);
  assert.equal(typeof parseProxyArgs([]), "string");
  assert.equal(typeof parseProxyArgs(["a", "b"]), "string");
  assert.equal(typeof parseProxyArgs(["--bogus", "1", "c"]), "string");
});

Deno.test("proxy args: --http [HOST:]PORT (loopback unless given), --auth FILE, --opt=VALUE", () => {
  assert.deepEqual(parseProxyArgs(["--http", "8080", "--auth", "/etc/p", "c"]), {
    config: "c",
    socks: { hostname: "127.0.0.1", port: 1080 },
    http: { hostname: "127.0.0.1", port: 8080 },
    auth: "/etc/p",
    uapi: null,
  });
  assert.deepEqual(parseProxyArgs(["--http=[::]:3128", "--socks=0.0.0.0:1", "--auth=a", "c"]), {
    config: "c",
    socks: { hostname: "0.0.0.0", port: 1 },
    http: { hostname: "::", port: 3128 },
    auth: "a",
    uapi: null,
  });
  assert.match(parseProxyArgs(["--http", "x:y", "c"]) as string, /^Invalid --http address "x:y"/);
  assert.match(parseProxyArgs(["c", "--http"]) as string, /'--http <value>' argument missing/);
  assert.match(parseProxyArgs(["--auth=", "c"]) as string, /needs a file name/);
  assert.match(PROXY_USAGE, /--socks \[HOST:\]PORT\] \[--http \[HOST:\]PORT\] \[--auth FILE\]/);
});

Deno.test("proxy usage and `gotatun help` list every proxy option", () => {
  const help = helpText("gotatun");
  for (const opt of PROXY_OPTIONS) {
    assert.ok(PROXY_USAGE.includes(`[${opt} `), `${opt} in PROXY_USAGE`);
    // The usage lines of proxy: its first and the indented ones after it.
    const usage = /gotatun proxy [^\n]*(\n {15}\[[^\n]*)*/.exec(help)![0];
    assert.ok(usage.includes(`[${opt} `), `${opt} in the help's usage line`);
    assert.match(help, new RegExp(`^ +${opt} `, "m"), `${opt} explained in the help`);
    assert.match(PROXY_HELP, new RegExp(`^  ${opt} `, "m"), `${opt} in proxy --help`);
  }
  assert.equal(parseProxyArgs(["--help"]), "help");
  assert.equal(parseProxyArgs(["c", "-h"]), "help");
});

Deno.test("loadAuthFile(): users, a warning for a file others can read, errors with file:line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = `${dir}/users`;
    await Deno.writeTextFile(f, "alice:pw\n", { mode: 0o600 });
    await Deno.chmod(f, 0o600);
    const ok = await loadAuthFile(f);
    assert.ok(typeof ok !== "string");
    assert.equal(ok.auth.size, 1);
    assert.deepEqual(ok.warnings, []);
    await Deno.chmod(f, 0o644);
    const open = await loadAuthFile(f);
    assert.ok(typeof open !== "string");
    assert.deepEqual(open.warnings, [`${f} is readable by other users; chmod 600 ${f}`]);
    await Deno.writeTextFile(f, "alice:pw\nbroken\n");
    assert.equal(await loadAuthFile(f), `${f}:2: expected user:password`);
    assert.match(await loadAuthFile(`${dir}/missing`) as string, /^.*missing: No such file/);
    assert.equal(await loadAuthFile(dir), `${dir}: not a regular file`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy command: starts without root or a TUN device, answers SOCKS5, stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const peer = publicKey(generatePrivateKey(systemRng));
  const cfg = `${dir}/t.conf`;
  await Deno.writeTextFile(
    cfg,
    `[Interface]\nPrivateKey = ${keyToBase64(generatePrivateKey(systemRng))}\n` +
      `Address = 10.9.0.1/24\n[Peer]\nPublicKey = ${keyToBase64(peer)}\n` +
      `AllowedIPs = 10.9.0.0/24\nEndpoint = 127.0.0.1:9\n`,
  );
  const child = spawnGotatun(["proxy", "--socks", "127.0.0.1:0", cfg]);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const m = /SOCKS5 proxy on 127\.0\.0\.1:(\d+) through 10\.9\.0\.1/.exec(text);
    assert.ok(m, text);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(m[1]) });
    await conn.write(new Uint8Array([5, 1, 0]));
    const buf = new Uint8Array(12);
    let n = 0;
    while (n < 2) n += (await conn.read(buf.subarray(n)))!;
    assert.deepEqual(buf.subarray(0, 2), new Uint8Array([5, 0]));
    // A name, and the config has no DNS server: "host unreachable".
    await conn.write(new Uint8Array([5, 1, 0, 3, 3, 0x61, 0x62, 0x63, 0, 80]));
    n = 0;
    while (n < 10) n += (await conn.read(buf.subarray(n)))!;
    assert.deepEqual(buf.subarray(0, 2), new Uint8Array([5, 4]));
    conn.close();
    reader.releaseLock();
    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("proxy command: --http and --auth, both proxies ask for the user in the file", async () => {
  const dir = await Deno.makeTempDir();
  const cfg = `${dir}/t.conf`, users = `${dir}/users`;
  await Deno.writeTextFile(
    cfg,
    `[Interface]\nPrivateKey = ${keyToBase64(generatePrivateKey(systemRng))}\n` +
      `Address = 10.9.0.1/24\n[Peer]\n` +
      `PublicKey = ${keyToBase64(publicKey(generatePrivateKey(systemRng)))}\n` +
      `AllowedIPs = 10.9.0.0/24\nEndpoint = 127.0.0.1:9\n`,
  );
  await Deno.writeTextFile(users, "alice:open sesame\n");
  await Deno.chmod(users, 0o644);
  const child = spawnGotatun([
    "proxy",
    "--socks=127.0.0.1:0",
    "--http",
    "127.0.0.1:0",
    "--auth",
    users,
    cfg,
  ]);
  const enc = new TextEncoder();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (text.split("\n").length < 3) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const via = "through 10\\.9\\.0\\.1, 1 user from \\S+/users";
    const socks = new RegExp(`^SOCKS5 proxy on 127\\.0\\.0\\.1:(\\d+) ${via}$`, "m").exec(text);
    const http = new RegExp(`^HTTP proxy on 127\\.0\\.0\\.1:(\\d+) ${via}$`, "m").exec(text);
    assert.ok(socks && http, text);
    const readSome = async (conn: Deno.Conn, n: number) => {
      const buf = new Uint8Array(n);
      let got = 0;
      while (got < n) {
        const k = await conn.read(buf.subarray(got));
        if (k === null) break;
        got += k;
      }
      return [...buf.subarray(0, got)];
    };
    // SOCKS5: no-auth is refused; the user from the file is accepted.
    const s1 = await Deno.connect({ hostname: "127.0.0.1", port: Number(socks[1]) });
    await s1.write(new Uint8Array([5, 1, 0]));
    assert.deepEqual(await readSome(s1, 2), [5, 0xff]);
    s1.close();
    const s2 = await Deno.connect({ hostname: "127.0.0.1", port: Number(socks[1]) });
    const u = enc.encode("alice"), p = enc.encode("open sesame");
    await s2.write(new Uint8Array([5, 1, 2, 1, u.length, ...u, p.length, ...p]));
    assert.deepEqual(await readSome(s2, 4), [5, 2, 1, 0]);
    s2.close();
    // HTTP: 407 without credentials; with them the request is judged (400: not absolute-form).
    const ask = async (extra: string) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: Number(http[1]) });
      await c.write(enc.encode(`GET / HTTP/1.1\r\n${extra}\r\n`));
      const res = new TextDecoder().decode(new Uint8Array(await readSome(c, 4096)));
      c.close();
      return res.split("\r\n")[0];
    };
    assert.equal(await ask(""), "HTTP/1.1 407 Proxy Authentication Required");
    const basic = btoa("alice:open sesame");
    assert.equal(await ask(`Proxy-Authorization: Basic ${basic}\r\n`), "HTTP/1.1 400 Bad Request");
    reader.releaseLock();
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    const stderr = await new Response(child.stderr).text();
    assert.match(stderr, /warning: \S+\/users is readable by other users; chmod 600/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
