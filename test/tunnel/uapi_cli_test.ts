// SPDX-License-Identifier: Apache-2.0
// `gotatun proxy --uapi DIR` and `gotatun forward --uapi DIR` as child
// processes (an ordinary user's: no root, no TUN): `gotatun wg show`,
// `gotatun set`/`showconf` and `gotatun top --once` reach the tunnel through
// GOTATUN_SOCKET_DIR; a second instance on the same socket is refused; the
// socket goes away with SIGTERM.
import assert from "node:assert/strict";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { systemRng } from "../../src/clock.ts";
import { keyToBase64 } from "../../src/keys.ts";
import { MAIN, spawnGotatun, stopGotatun } from "./_cli.ts";

/** Runs gotatun to its end with `env` added. */
async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "-A", MAIN, ...args],
    env,
  }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout), err: dec.decode(o.stderr) };
}

/** Reads stdout until a line matches `re` (or the stream ends); returns all read so far. */
async function readUntil(r: ReadableStreamDefaultReader<string>, re: RegExp): Promise<string> {
  let text = "";
  while (!re.test(text)) {
    const { value, done } = await r.read();
    if (done) break;
    text += value;
  }
  return text;
}

function writeConfig(path: string): string {
  const peer = keyToBase64(publicKey(generatePrivateKey(systemRng)));
  Deno.writeTextFileSync(
    path,
    `[Interface]\nPrivateKey = ${keyToBase64(generatePrivateKey(systemRng))}\n` +
      `Address = 10.9.0.1/24\n[Peer]\nPublicKey = ${peer}\n` +
      `AllowedIPs = 10.9.0.0/24\nEndpoint = 127.0.0.1:9\n`,
  );
  return peer;
}

Deno.test("proxy --uapi DIR: gotatun wg show, set, showconf and top reach it through GOTATUN_SOCKET_DIR", async () => {
  const tmp = await Deno.makeTempDir();
  const dir = `${tmp}/sockets`;
  const peer = writeConfig(`${tmp}/wgt.conf`);
  const proxy = spawnGotatun(["proxy", "--socks", "127.0.0.1:0", "--uapi", dir, `${tmp}/wgt.conf`]);
  try {
    const out = proxy.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const text = await readUntil(out, /^UAPI socket .*\n/m);
    out.releaseLock();
    const real = Deno.realPathSync(dir);
    assert.match(text, /^SOCKS5 proxy on 127\.0\.0\.1:\d+ through 10\.9\.0\.1\n/);
    assert.ok(
      text.includes(
        `\nUAPI socket ${real}/wgt.sock (GOTATUN_SOCKET_DIR=${real} gotatun show wgt)\n`,
      ),
      text,
    );
    assert.equal(Deno.statSync(dir).mode! & 0o777, 0o700);
    const env = { GOTATUN_SOCKET_DIR: dir };

    const show = await run(["wg", "show"], env);
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /^interface: wgt$/m);
    assert.ok(show.out.includes(`\npeer: ${peer}\n`), show.out);
    assert.match(show.out, /^ {2}endpoint: 127\.0\.0\.1:9$/m);

    const set = await run(
      ["set", "wgt", "peer", peer, "allowed-ips", "10.9.0.0/24,10.50.0.0/16"],
      env,
    );
    assert.deepEqual(set, { code: 0, out: "", err: "" });
    const conf = await run(["showconf", "wgt"], env);
    assert.equal(conf.code, 0, conf.err);
    assert.match(conf.out, /^AllowedIPs = 10\.9\.0\.0\/24, 10\.50\.0\.0\/16$/m);

    const top = await run(["top", "--once"], env);
    assert.equal(top.code, 0, top.err);
    assert.match(top.out, /^interface: wgt .*peers: 1/m);

    // A second proxy on the same socket is refused, naming it; the first keeps it.
    const again = await run(["proxy", "--socks", "127.0.0.1:0", "--uapi", dir, `${tmp}/wgt.conf`]);
    assert.equal(again.code, 1);
    assert.match(
      again.err,
      /^gotatun proxy: --uapi: unix socket in use: .*\/wgt\.sock is served by/,
    );
    assert.ok(Deno.lstatSync(`${dir}/wgt.sock`).isSocket);

    assert.equal(await stopGotatun(proxy), 0);
    assert.throws(() => Deno.lstatSync(`${dir}/wgt.sock`), Deno.errors.NotFound);
  } finally {
    await stopGotatun(proxy);
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("forward --uapi DIR --uapi-name NAME: served while it runs, removed on SIGTERM; bad options exit 1", async () => {
  const tmp = await Deno.makeTempDir();
  writeConfig(`${tmp}/site.cfg`);
  const fwd = spawnGotatun([
    "forward",
    "-L",
    "127.0.0.1:0:10.9.0.2:80",
    "--uapi",
    tmp,
    "--uapi-name",
    "fw0",
    `${tmp}/site.cfg`,
  ]);
  try {
    const out = fwd.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const text = await readUntil(out, /^UAPI socket .*\n/m);
    out.releaseLock();
    assert.match(text, /^forwarding 127\.0\.0\.1:\d+\/tcp -> 10\.9\.0\.2:80 through the tunnel\n/);
    assert.match(
      text,
      /\nUAPI socket \S+\/fw0\.sock \(GOTATUN_SOCKET_DIR=\S+ gotatun show fw0\)\n/,
    );
    const names = await run(["show", "interfaces"], { GOTATUN_SOCKET_DIR: tmp });
    assert.deepEqual(names, { code: 0, out: "fw0\n", err: "" });
    assert.equal(await stopGotatun(fwd), 0);
    assert.throws(() => Deno.lstatSync(`${tmp}/fw0.sock`), Deno.errors.NotFound);

    // site.cfg gives no name without --uapi-name; a group-writable directory is refused.
    const noName = await run(["forward", "-L", "1:10.9.0.2:80", "--uapi", tmp, `${tmp}/site.cfg`]);
    assert.equal(noName.code, 1);
    assert.match(noName.err, /--uapi: cannot take an interface name from ".*site\.cfg"/);
    Deno.mkdirSync(`${tmp}/open`);
    Deno.chmodSync(`${tmp}/open`, 0o777);
    const open = await run([
      "forward",
      "-L",
      "127.0.0.1:0:10.9.0.2:80",
      "--uapi",
      `${tmp}/open`,
      "--uapi-name",
      "x",
      `${tmp}/site.cfg`,
    ]);
    assert.equal(open.code, 1);
    assert.match(open.err, /--uapi: Cannot use socket directory .*: writable by group or others/);
  } finally {
    await stopGotatun(fwd);
    await Deno.remove(tmp, { recursive: true });
  }
});
