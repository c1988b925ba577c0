// SPDX-License-Identifier: Apache-2.0
// `gotatun proxy`: argument parsing, and the command as a child process (as
// an ordinary user needs it: Deno UDP sockets, no TUN) answering SOCKS5.
import assert from "node:assert/strict";
import { parseListenAddress, parseProxyArgs } from "../../cli/proxy.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToBase64 } from "../../src/keys.ts";

Deno.test("proxy args: loopback 1080 by default, --socks PORT, HOST:PORT, [V6]:PORT", () => {
  assert.deepEqual(parseProxyArgs(["wg.conf"]), {
    config: "wg.conf",
    socks: { hostname: "127.0.0.1", port: 1080 },
  });
  assert.deepEqual(parseProxyArgs(["--socks", "9050", "c"]), {
    config: "c",
    socks: { hostname: "127.0.0.1", port: 9050 },
  });
  assert.deepEqual(parseListenAddress("0.0.0.0:1"), { hostname: "0.0.0.0", port: 1 });
  assert.deepEqual(parseListenAddress("[::1]:1080"), { hostname: "::1", port: 1080 });
  assert.equal(parseListenAddress("::1:1080"), null);
  assert.equal(parseListenAddress("host:70000"), null);
  assert.equal(typeof parseProxyArgs([]), "string");
  assert.equal(typeof parseProxyArgs(["a", "b"]), "string");
  assert.equal(typeof parseProxyArgs(["--http", "1", "c"]), "string");
});

Deno.test("proxy command: starts on Deno UDP sockets, answers SOCKS5, stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  const peer = publicKey(generatePrivateKey(systemRng));
  const cfg = `${dir}/t.conf`;
  await Deno.writeTextFile(
    cfg,
    `[Interface]\nPrivateKey = ${keyToBase64(generatePrivateKey(systemRng))}\n` +
      `Address = 10.9.0.1/24\n[Peer]\nPublicKey = ${keyToBase64(peer)}\n` +
      `AllowedIPs = 10.9.0.0/24\nEndpoint = 127.0.0.1:9\n`,
  );
  const main = new URL("../../cli/main.ts", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "-A", main, "proxy", "--socks", "127.0.0.1:0", cfg],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
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
