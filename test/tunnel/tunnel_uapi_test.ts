// SPDX-License-Identifier: Apache-2.0
// The UAPI socket of an in-process Tunnel (`proxy`/`forward --uapi DIR`): two
// Tunnels in memory, A's device served at DIR/wgA.sock; `get` after traffic,
// `wg show`/`wg set` through GOTATUN_SOCKET_DIR, a listen-port change that
// rebinds A's bind, and the socket directory's rules.
import assert from "node:assert/strict";
import { parseUapiOption, serveUapi } from "../../cli/tunnel_cli.ts";
import { wgMain } from "../../cli/wg/main.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToBase64, keyToHex } from "../../src/keys.ts";
import { ipcGet } from "../../uapi/apply.ts";
import { parseLines } from "../../uapi/protocol.ts";
import { DEFAULT_SOCKET_DIR, socketDirFromEnv } from "../../uapi/socket_dir.ts";
import type { Tunnel } from "../../src/tunnel/tunnel.ts";
import { bytes, readAll, tunnelPair, writeAll } from "./_pair.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One UAPI request on a fresh connection; the reply up to its blank line. */
async function uapi(path: string, request: string): Promise<string> {
  const c = await Deno.connect({ transport: "unix", path });
  try {
    await c.write(enc.encode(request));
    let text = "";
    const buf = new Uint8Array(65536);
    while (!text.endsWith("\n\n")) {
      const n = await c.read(buf);
      if (n === null) break;
      text += dec.decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    c.close();
  }
}

/** The `get` reply as key → values (a key may repeat, e.g. allowed_ip). */
function fields(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const [k, v] of parseLines(text)) {
    if (v === null) continue;
    m.set(k, [...(m.get(k) ?? []), v]);
  }
  return m;
}

/** Runs our `wg` with `env`, capturing its output. */
async function wg(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; out: string; err: string }> {
  const out: Uint8Array[] = [], err: Uint8Array[] = [];
  const sink = (into: Uint8Array[]) => ({
    write(p: Uint8Array) {
      into.push(p.slice());
      return Promise.resolve(p.length);
    },
  });
  const code = await wgMain(args, env, { stdout: sink(out), stderr: sink(err) });
  const text = (parts: Uint8Array[]) => parts.map((p) => dec.decode(p)).join("");
  return { code, out: text(out), err: text(err) };
}

/** A TCP round trip from A to B's port 7000 through the tunnel: `n` bytes each way. */
async function roundTrip(a: Tunnel, b: Tunnel, n: number): Promise<void> {
  const l = b.listen({ port: 7000 });
  try {
    const serving = (async () => {
      const c = await l.accept();
      const got = await readAll(c.readable);
      await writeAll(c.writable, got);
    })();
    const c = await a.connect({ hostname: "10.9.0.2", port: 7000, timeoutMs: 10_000 });
    const data = bytes(n, n);
    const [, back] = await Promise.all([writeAll(c.writable, data), readAll(c.readable)]);
    await serving;
    assert.deepEqual(back, data);
  } finally {
    l.close();
  }
}

Deno.test("Tunnel UAPI socket: get after traffic, wg show/set through GOTATUN_SOCKET_DIR, listen-port rebind", async () => {
  const tmp = await Deno.makeTempDir();
  const pair = await tunnelPair();
  const dir = `${tmp}/run/gotatun`; // missing: created 0700, parents too
  const server = await serveUapi(pair.a, { dir, name: "wgA" });
  try {
    const path = `${dir}/wgA.sock`;
    assert.equal(server.path, path);
    assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
    assert.ok(Deno.lstatSync(path).isSocket);
    assert.equal(Deno.lstatSync(path).mode! & 0o777, 0o700);

    await roundTrip(pair.a, pair.b, 50_000);
    const bKey = keyToHex(pair.b.device.publicKey!);
    const got = fields(await uapi(path, "get=1\n\n"));
    assert.deepEqual(got.get("errno"), ["0"]);
    assert.deepEqual(got.get("listen_port"), ["51820"]);
    assert.deepEqual(got.get("public_key"), [bKey]);
    assert.deepEqual(got.get("endpoint"), ["192.0.2.2:51821"]);
    assert.ok(Number(got.get("last_handshake_time_sec")![0]) > 0, "a handshake time");
    // Both directions carried the 50 kB (plus headers and the handshake).
    assert.ok(Number(got.get("rx_bytes")![0]) > 50_000, `rx_bytes ${got.get("rx_bytes")}`);
    assert.ok(Number(got.get("tx_bytes")![0]) > 50_000, `tx_bytes ${got.get("tx_bytes")}`);

    // Our wg finds it through GOTATUN_SOCKET_DIR (and only through it).
    const env = { GOTATUN_SOCKET_DIR: dir };
    const show = await wg(["show"], env);
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /^interface: wgA$/m);
    assert.match(
      show.out,
      new RegExp(`^peer: ${escape(keyToBase64(pair.b.device.publicKey!))}$`, "m"),
    );
    assert.match(show.out, /^ {2}latest handshake: (Now|.* ago)$/m);
    assert.match(show.out, /^ {2}transfer: [0-9.]+ KiB received, [0-9.]+ KiB sent$/m);
    assert.deepEqual(await wg(["show", "interfaces"], env), { code: 0, out: "wgA\n", err: "" });
    // Another directory (no sockets in it) lists nothing.
    const elsewhere = await wg(["show", "interfaces"], { GOTATUN_SOCKET_DIR: tmp });
    assert.deepEqual(elsewhere, { code: 0, out: "", err: "" });

    // wg set: a new peer with an endpoint and allowed IPs, B's allowed IPs and keepalive changed.
    const cKey = publicKey(generatePrivateKey(systemRng));
    const cPub = keyToBase64(cKey);
    const bPub = keyToBase64(pair.b.device.publicKey!);
    const set = await wg([
      "set",
      "wgA",
      "peer",
      cPub,
      "endpoint",
      "192.0.2.9:5000",
      "allowed-ips",
      "10.77.0.0/16",
      "peer",
      bPub,
      "persistent-keepalive",
      "7",
      "allowed-ips",
      "10.9.0.0/24,10.66.0.0/16",
    ], env);
    assert.deepEqual(set, { code: 0, out: "", err: "" });
    const peers = [...pair.a.device.peers()];
    assert.equal(peers.length, 2);
    const after = fields(await uapi(path, "get=1\n\n"));
    assert.deepEqual(after.get("public_key")!.sort(), [bKey, keyToHex(cKey)].sort());
    assert.ok(after.get("endpoint")!.includes("192.0.2.9:5000"));
    assert.ok(after.get("allowed_ip")!.includes("10.77.0.0/16"));
    assert.ok(after.get("allowed_ip")!.includes("10.66.0.0/16"));
    assert.deepEqual(after.get("persistent_keepalive_interval")!.sort(), ["0", "7"]);

    // A raw set that removes the new peer; a bad line is answered with its errno.
    const removed = await uapi(
      path,
      `set=1\npublic_key=${keyToHex(cKey)}\nremove=true\n\n`,
    );
    assert.equal(removed, "errno=0\n\n");
    assert.equal([...pair.a.device.peers()].length, 1);
    assert.equal(await uapi(path, "set=1\nlisten_port=x\n\n"), "errno=-22\n\n");

    // A new listen port rebinds A's socket; traffic goes on and B learns the new port.
    assert.deepEqual(await wg(["set", "wgA", "listen-port", "51999"], env), {
      code: 0,
      out: "",
      err: "",
    });
    assert.deepEqual(fields(await uapi(path, "get=1\n\n")).get("listen_port"), ["51999"]);
    await roundTrip(pair.a, pair.b, 20_000);
    assert.match(ipcGet(pair.b.device), /^endpoint=192\.0\.2\.1:51999$/m);

    // A port someone else holds: errno=-98 (EADDRINUSE) and no socket, as in wireguard-go;
    // a port that is free brings the tunnel back.
    const squatter = pair.net.createBind({ v4: "192.0.2.1" });
    squatter.open(52000, () => {});
    assert.equal(await uapi(path, "set=1\nlisten_port=52000\n\n"), "errno=-98\n\n");
    // Port 0 (unbound) is left out of `get`, as wireguard-go leaves it out.
    assert.equal(fields(await uapi(path, "get=1\n\n")).get("listen_port"), undefined);
    squatter.close();
    assert.equal(await uapi(path, "set=1\nlisten_port=52000\n\n"), "errno=0\n\n");
    await roundTrip(pair.a, pair.b, 20_000);
    assert.match(ipcGet(pair.b.device), /^endpoint=192\.0\.2\.1:52000$/m);

    // A second server on the same path is refused while this one answers.
    await assert.rejects(serveUapi(pair.b, { dir, name: "wgA" }), /unix socket in use/);
    server.close();
    assert.throws(() => Deno.lstatSync(path), Deno.errors.NotFound);
  } finally {
    server.close();
    pair.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("Tunnel UAPI socket: a directory group or others can write to is refused", async () => {
  const tmp = await Deno.makeTempDir();
  const pair = await tunnelPair();
  try {
    Deno.mkdirSync(`${tmp}/open`);
    Deno.chmodSync(`${tmp}/open`, 0o770);
    await assert.rejects(
      serveUapi(pair.a, { dir: `${tmp}/open`, name: "wgA" }),
      /Cannot use socket directory .*\/open: writable by group or others \(mode 0770\)/,
    );
    Deno.writeTextFileSync(`${tmp}/file`, "");
    await assert.rejects(
      serveUapi(pair.a, { dir: `${tmp}/file`, name: "wgA" }),
      /not a directory/,
    );
    assert.deepEqual([...Deno.readDirSync(`${tmp}/open`)], []);
  } finally {
    pair.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("--uapi option: the name from the config file as wg-quick takes it, or --uapi-name", () => {
  assert.equal(parseUapiOption(undefined, undefined, "wg0.conf"), null);
  assert.deepEqual(parseUapiOption("/run/u", undefined, "/etc/x/wg0.conf"), {
    dir: "/run/u",
    name: "wg0",
  });
  assert.deepEqual(parseUapiOption("d", "home", "t.cfg"), { dir: "d", name: "home" });
  assert.match(parseUapiOption("d", undefined, "t.cfg") as string, /give one with --uapi-name/);
  assert.match(
    parseUapiOption("d", undefined, "a-name-too-long-for-linux.conf") as string,
    /cannot take an interface name/,
  );
  assert.match(parseUapiOption("d", "a/b", "wg0.conf") as string, /--uapi-name "a\/b"/);
  assert.match(parseUapiOption("d", "", "wg0.conf") as string, /--uapi-name ""/);
  assert.match(parseUapiOption(undefined, "x", "wg0.conf") as string, /needs --uapi DIR/);
  assert.match(parseUapiOption("", undefined, "wg0.conf") as string, /needs a directory/);
  assert.match(
    parseUapiOption(`/${"d".repeat(100)}`, undefined, "wg0.conf") as string,
    /longer than 107 bytes/,
  );
});

Deno.test("GOTATUN_SOCKET_DIR: the clients' socket directory when set and non-empty", () => {
  assert.equal(socketDirFromEnv({}), DEFAULT_SOCKET_DIR);
  assert.equal(socketDirFromEnv({ GOTATUN_SOCKET_DIR: "" }), DEFAULT_SOCKET_DIR);
  assert.equal(socketDirFromEnv({ GOTATUN_SOCKET_DIR: "/tmp/s" }), "/tmp/s");
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
