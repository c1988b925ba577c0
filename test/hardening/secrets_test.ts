// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Secrets stay secret (issue "hardening", item 4):
 *
 * - **Logs.** Two daemons at LOG_LEVEL=verbose (every level) go through
 *   handshakes with a preshared key, traffic, persistent keepalives, a private
 *   key and a PSK rotation, UAPI sets, `wg show`/`showconf`, UAPI errors whose
 *   requests contain the keys (a `private_key` line without its `=`, keys
 *   where an endpoint or prefix belongs, an operation line that is a key),
 *   and shutdown. Their logs must contain no private or preshared key (hex or
 *   base64), and no 64-hex-digit or 44-character base64 run at all: session,
 *   ephemeral and chaining keys cannot be looked for by value from outside,
 *   but any 32-byte secret printed in either encoding would match.
 * - **The socket.** 0700, in a directory owned by root and not writable by
 *   group or others; `UapiServer.listen` refuses a directory that is (checked
 *   on temp dirs, and on the daemon with a private tmpfs mounted on
 *   /run/wireguard in its own mount namespace, so the host is not touched).
 * - **`get` exposes what wireguard-go does, no more.** Its key set equals
 *   wireguard-go's `IpcGetOperation` keys here; the byte-for-byte comparison
 *   with a live wireguard-go is test/uapi/wireguard_go_test.ts (root), and its
 *   recorded replies are replayed without root by test/uapi/golden_test.ts.
 */
import assert from "node:assert/strict";
import { FakeClock, seededRng } from "../_util/fake_clock.ts";
import { pingUntil, vethPair, withNamespaces } from "../_util/netns.ts";
import { Device } from "../../src/device.ts";
import { MemoryNetwork } from "../../src/conn/memory.ts";
import { MemoryTun } from "../../src/tun/memory.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { ipcGet, ipcSet } from "../../uapi/apply.ts";
import { redactKeys, UapiError } from "../../uapi/errors.ts";
import { formatKeyHex, parseLines } from "../../uapi/protocol.ts";
import { checkSocketDir, UapiServer } from "../../uapi/server.ts";
import { log, run, skipReason } from "./_net.ts";
import {
  digits,
  genKeyPair,
  genPskFile,
  type KeyPair,
  programArgv,
  SOCKET_DIR,
  startDaemon,
  wg,
} from "../_util/wg.ts";
import { ignoreUnless } from "../_util/needs.ts";

const enc = new TextEncoder();
const HEX_RUN = /[0-9a-fA-F]{64}/;
const B64_RUN = /[A-Za-z0-9+/]{43}=/;

function b64ToHex(b64: string): string {
  return Uint8Array.fromBase64(b64).toHex();
}

// ---- without root ----

Deno.test("redactKeys() hides hex and base64 keys; UapiError.toString() uses it", () => {
  const key = generatePrivateKey(seededRng(3));
  const hex = formatKeyHex(key);
  const b64 = key.toBase64();
  const text = `failed to parse line "private_key${hex}" and ${b64} and ${hex.toUpperCase()}`;
  const out = redactKeys(text);
  assert.ok(!out.includes(hex) && !out.includes(b64) && !out.includes(hex.toUpperCase()), out);
  assert.ok(!HEX_RUN.test(out) && !B64_RUN.test(out), out);
  assert.equal(redactKeys("listen_port=51820"), "listen_port=51820");
  const err = new UapiError(-71, `failed to parse line "private_key${hex}"`);
  assert.equal(err.toString(), `IPC error -71: failed to parse line "private_key(redacted)"`);
});

Deno.test("checkSocketDir() refuses directories writable by group or others", async () => {
  const root = await Deno.makeTempDir({ prefix: "gthard-dir-" });
  try {
    for (const mode of [0o700, 0o755, 0o750, 0o711]) {
      await Deno.chmod(root, mode);
      checkSocketDir(root);
    }
    for (const mode of [0o777, 0o775, 0o757, 0o1777, 0o770]) {
      await Deno.chmod(root, mode);
      assert.throws(
        () => checkSocketDir(root),
        new RegExp(`writable by group or others \\(mode ${mode.toString(8).padStart(4, "0")}\\)`),
      );
    }
    await Deno.chmod(root, 0o755);
    const file = `${root}/f`;
    await Deno.writeTextFile(file, "");
    assert.throws(() => checkSocketDir(file), /not a directory/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test({
  name: "checkSocketDir() refuses a directory owned by another user (root only)",
  ignore: ignoreUnless("test/hardening/secrets_test.ts (socket directory)", { root: true }),
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "gthard-dir-" });
    try {
      await Deno.chmod(root, 0o755);
      await Deno.chown(root, 65534, 65534);
      assert.throws(() => checkSocketDir(root), /owned by uid 65534, not root/);
      // A symlink to it is judged by its target.
      const link = `${root}-link`;
      await Deno.symlink(root, link);
      try {
        assert.throws(() => checkSocketDir(link), /owned by uid 65534/);
      } finally {
        await Deno.remove(link);
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("UapiServer.listen() creates no socket in a world-writable directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "gthard-dir-" });
  try {
    await Deno.chmod(root, 0o777);
    const iface = `gth${digits()}`;
    await assert.rejects(
      UapiServer.listen({
        iface,
        dir: root,
        handle: { get: () => "", set: () => ({ line() {}, end() {} }) },
      }),
      /Cannot use socket directory .*: writable by group or others \(mode 0777\)/,
    );
    assert.deepEqual([...Deno.readDirSync(root)], []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("ipcGet() keys are exactly wireguard-go's IpcGetOperation keys", () => {
  const clock = new FakeClock();
  const rng = seededRng(9);
  const net = new MemoryNetwork(clock);
  const device = new Device({
    tun: new MemoryTun(),
    bind: net.createBind({ v4: "192.0.2.1" }),
    clock,
    rng,
  });
  const sk = generatePrivateKey(rng), peer = publicKey(generatePrivateKey(rng));
  const psk = generatePrivateKey(rng);
  const err = ipcSet(
    device,
    [
      `private_key=${formatKeyHex(sk)}`,
      "listen_port=51820",
      "fwmark=7",
      `public_key=${formatKeyHex(peer)}`,
      `preshared_key=${formatKeyHex(psk)}`,
      "endpoint=192.0.2.2:51821",
      "persistent_keepalive_interval=25",
      "allowed_ip=10.0.0.2/32",
      "allowed_ip=fd00::2/128",
    ].join("\n") + "\n\n",
  );
  assert.equal(err, null);
  device.up();
  const keys = new Set(parseLines(ipcGet(device)).map(([k]) => k));
  // wireguard-go device/uapi.go IpcGetOperation, in order.
  const goKeys = [
    "private_key",
    "listen_port",
    "fwmark",
    "public_key",
    "preshared_key",
    "protocol_version",
    "endpoint",
    "last_handshake_time_sec",
    "last_handshake_time_nsec",
    "tx_bytes",
    "rx_bytes",
    "persistent_keepalive_interval",
    "allowed_ip",
  ];
  assert.deepEqual([...keys], goKeys);
  device.close();
});

// ---- root: the daemon ----

const SKIP = skipReason("secrets_test.ts", ["ip", "wg", "ping"]);

/** Sends raw UAPI text on a fresh connection and reads until `replies` replies or close. */
async function rawUapi(path: string, text: string, replies: number): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  const dec = new TextDecoder();
  let out = "";
  const deadline = Date.now() + 5000;
  try {
    await conn.write(enc.encode(text));
    const buf = new Uint8Array(65536);
    while ((out.match(/\n\n/g) ?? []).length < replies && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf).catch(() => null),
        new Promise<null>((r) => (timer = setTimeout(() => r(null), deadline - Date.now()))),
      ]);
      clearTimeout(timer);
      if (n === null) break;
      out += dec.decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
  return out;
}

async function genPsk(dir: string): Promise<{ b64: string; file: string }> {
  const file = await genPskFile(dir);
  return { b64: (await Deno.readTextFile(file)).trim(), file };
}

Deno.test({
  name: "daemon: no key in the verbose log through handshakes, rotations, UAPI errors",
  ignore: SKIP !== "",
  async fn() {
    await withNamespaces("gthard", 2, async (ctx) => {
      const [n1, n2] = ctx.namespaces;
      const dir = await Deno.makeTempDir({ prefix: "gthard-" });
      ctx.defer(() => Deno.remove(dir, { recursive: true }));
      await vethPair(n1, n2, {
        nameA: "s1",
        nameB: "s2",
        addrA: "10.93.0.1/24",
        addrB: "10.93.0.2/24",
      });
      const id = digits();
      const d1 = await startDaemon(ctx, n1, `gth${id}s`);
      const d2 = await startDaemon(ctx, n2, `gth${id}t`);
      const secrets: string[] = [];
      const keep = (k: KeyPair) => secrets.push(k.privateKey, b64ToHex(k.privateKey));
      let k1 = await genKeyPair(dir);
      const k2 = await genKeyPair(dir);
      let psk = await genPsk(dir);
      keep(k1), keep(k2), secrets.push(psk.b64, b64ToHex(psk.b64));
      // deno-fmt-ignore
      await wg(["set", d1.ifname, "private-key", k1.privateFile, "listen-port", "51001", "peer", k2.publicKey,
        "preshared-key", psk.file, "allowed-ips", "10.94.0.2/32", "endpoint", "10.93.0.2:51002"]);
      // deno-fmt-ignore
      await wg(["set", d2.ifname, "private-key", k2.privateFile, "listen-port", "51002", "peer", k1.publicKey,
        "preshared-key", psk.file, "allowed-ips", "10.94.0.1/32", "persistent-keepalive", "1"]);
      await d1.ns.addrUp(d1.ifname, "10.94.0.1/24");
      await d2.ns.addrUp(d2.ifname, "10.94.0.2/24");
      assert.notEqual(
        await pingUntil(n1, "10.94.0.2", { timeoutMs: 10_000 }),
        null,
        "first handshake",
      );
      await pingUntil(n2, "10.94.0.1", { timeoutMs: 5000 });

      // Rotate d1's private key and the PSK on both sides: a new handshake with new secrets.
      k1 = await genKeyPair(dir);
      psk = await genPsk(dir);
      keep(k1), secrets.push(psk.b64, b64ToHex(psk.b64));
      await wg([
        "set",
        d1.ifname,
        "private-key",
        k1.privateFile,
        "peer",
        k2.publicKey,
        "preshared-key",
        psk.file,
      ]);
      const old = secrets[0];
      await wg([
        "set",
        d2.ifname,
        "peer",
        (await wg(["pubkey"], { stdin: old + "\n" })).stdout.trim(),
        "remove",
      ]);
      // deno-fmt-ignore
      await wg(["set", d2.ifname, "peer", k1.publicKey, "preshared-key", psk.file,
        "allowed-ips", "10.94.0.1/32", "persistent-keepalive", "1"]);
      assert.notEqual(
        await pingUntil(n1, "10.94.0.2", { timeoutMs: 15_000 }),
        null,
        "handshake after rotation",
      );

      // The UAPI reads a client may do.
      await wg(["show", d1.ifname]);
      await wg(["showconf", d1.ifname]);
      await wg(["show", d1.ifname, "dump"]);

      // UAPI errors whose requests carry the keys.
      const sk = b64ToHex(k1.privateKey), pskHex = b64ToHex(psk.b64), pub = b64ToHex(k2.publicKey);
      const sock = `${SOCKET_DIR}/${d1.ifname}.sock`;
      const bad = [
        `set=1\nprivate_key${sk}\n\n`,
        `set=1\nprivate_key ${k1.privateKey}\n\n`,
        `set=1\nprivate_key=${sk}z\n\n`,
        `set=1\nprivate_key=${sk.slice(1)}\n\n`,
        `set=1\nprivate_key=${k1.privateKey}\n\n`,
        `set=1\npublic_key=${pub}\npreshared_key=${pskHex}00\n\n`,
        `set=1\npublic_key=${pub}\nendpoint=${pskHex}\n\n`,
        `set=1\npublic_key=${pub}\nallowed_ip=${pskHex}/32\n\n`,
        `set=1\npublic_key=${pub}\npersistent_keepalive_interval=${pskHex}\n\n`,
        `set=1\n${sk}=1\n\n`,
        `set=1\npublic_key=${pub}\n${pskHex}=true\n\n`,
        `get=1\n${sk}`,
        `${sk}\n`,
      ];
      for (const req of bad) {
        const reply = await rawUapi(sock, req, 1);
        assert.ok(!reply.includes("errno=0"), `accepted: ${JSON.stringify(req)} → ${reply}`);
      }
      assert.notEqual(
        await pingUntil(n1, "10.94.0.2", { timeoutMs: 10_000 }),
        null,
        "still works after errors",
      );

      await d1.proc.kill("SIGTERM", 5000);
      await d2.proc.kill("SIGTERM", 5000);
      const logs = d1.output() + d2.output();
      const lines = logs.split("\n");
      log(`${lines.length} log lines checked`);
      for (const want of ["Received handshake", "Sending handshake initiation", "IPC error -71"]) {
        assert.ok(logs.includes(want), `the log is not verbose enough: no "${want}"`);
      }
      for (const s of secrets) {
        const hit = lines.find((l) => l.includes(s));
        assert.equal(hit, undefined, `a key is in the log: ${hit}`);
      }
      for (const re of [HEX_RUN, B64_RUN]) {
        const hit = lines.find((l) => re.test(l));
        assert.equal(hit, undefined, `a key-shaped run is in the log: ${hit}`);
      }
    });
  },
});

Deno.test({
  name: "daemon: socket 0700 in a root-owned directory not writable by others",
  ignore: SKIP !== "",
  async fn() {
    await withNamespaces("gthard", 1, async (ctx) => {
      const d = await startDaemon(ctx, ctx.namespaces[0], `gth${digits()}p`, {
        env: { LOG_LEVEL: "error" },
      });
      const dirSt = Deno.statSync(SOCKET_DIR);
      assert.equal(dirSt.uid, 0);
      assert.equal(dirSt.mode! & 0o022, 0, `mode ${(dirSt.mode! & 0o7777).toString(8)}`);
      const st = Deno.lstatSync(`${SOCKET_DIR}/${d.ifname}.sock`);
      assert.ok(st.isSocket);
      assert.equal(st.uid, 0);
      assert.equal(st.mode! & 0o777, 0o700);
    });
  },
});

Deno.test({
  name: "daemon: refuses to start when /var/run/wireguard is world-writable or not root's",
  ignore: skipReason("secrets_test.ts", ["ip", "wg", "ping", "unshare", "mount"]) !== "",
  async fn() {
    const real = Deno.realPathSync(SOCKET_DIR);
    await withNamespaces("gthard", 1, async (ctx) => {
      const [ns] = ctx.namespaces;
      const argv = programArgv();
      for (
        const [opts, expect] of [
          [
            "mode=0777",
            /UAPI listen error: Cannot use socket directory .*writable by group or others \(mode 0777\)/,
          ],
          [
            "mode=0755,uid=65534",
            /UAPI listen error: Cannot use socket directory .*owned by uid 65534, not root/,
          ],
        ] as const
      ) {
        const ifname = `gth${digits()}r`;
        // A private mount namespace: the tmpfs hides the real directory from this process only.
        const script =
          `mount -t tmpfs -o ${opts} gthard ${real} && exec ip netns exec ${ns.name} ` +
          `${argv.map((a) => `'${a}'`).join(" ")} -f ${ifname}`;
        const r = await run(
          "unshare",
          ["--mount", "--propagation", "private", "sh", "-c", script],
          {
            timeoutMs: 30_000,
            env: { LOG_LEVEL: "verbose", WG_PROCESS_FOREGROUND: "1" },
          },
        );
        assert.equal(r.code, 1, `exit ${r.code}: ${r.stdout}${r.stderr}`);
        assert.match(r.stdout + r.stderr, expect);
        assert.ok(!(await ns.hasLink(ifname)), "the TUN was left behind");
      }
      // The host's directory was never touched.
      assert.equal(Deno.statSync(SOCKET_DIR).mode! & 0o022, 0);
    });
  },
});
