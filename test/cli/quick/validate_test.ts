// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * cli/quick/validate.ts: every kind of mistake is found with its line before
 * `up` creates anything, and no message shows any part of a key. In memory,
 * with a fake resolver (and bash for the hook check when it is installed).
 */
import assert from "node:assert/strict";
import { parseQuickConfig } from "../../../cli/quick/config.ts";
import {
  buildWgDevice,
  checkHooks,
  checkQuickKeys,
  checkWgLines,
  type ConfigProblem,
  rtTableNames,
} from "../../../cli/quick/validate.ts";
import { EAI_NONAME, type GaiResult, type Resolver } from "../../../cli/wg/resolve.ts";
import { hasTool, run } from "../../_util/proc.ts";

/** Names nothing; numeric services only. */
const resolver: Resolver = {
  getaddrinfo(host: string | null, service: string): GaiResult {
    if (host !== null || !/^[0-9]+$/.test(service)) {
      return { ok: false, code: EAI_NONAME, errno: 0 };
    }
    return {
      ok: true,
      addr: { family: 4, addr: new Uint8Array(4), port: Number(service), scopeId: 0 },
    };
  },
  ifIndexToName: () => null,
};

const KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PUB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";

function quick(text: string) {
  return parseQuickConfig("wg0", text);
}

function lines(problems: readonly ConfigProblem[]): string[] {
  return problems.map((p) => `${p.line}: ${p.message}`);
}

Deno.test("checkQuickKeys() reports bad Address, DNS, MTU and Table values with their lines", () => {
  const cfg = quick(
    [
      "[Interface]",
      "Address = 10.0.0.1/24, fd00::1/64",
      "Address = 10.0.0.300/24",
      "Address = 10.0.0.1/33, fd00::1/129, 10.0.0.2",
      "DNS = 1.1.1.1, fd00::53%eth0, example.com, ~., 1.1.1.256",
      "DNS = bad;name",
      "MTU = 1420",
      "MTU = abc",
      "MTU = 1200",
      "Table = 1234",
      "Table = main",
      "Table = vpn",
      "Table = Off",
    ].join("\n") + "\n",
  );
  assert.deepEqual(lines(checkQuickKeys(cfg, new Set(["vpn"]))), [
    '3: Address: "10.0.0.300/24" is not an IP prefix',
    '4: Address: "10.0.0.1/33" is not an IP prefix (the length after / must be 0 to 32)',
    '4: Address: "fd00::1/129" is not an IP prefix (the length after / must be 0 to 128)',
    '5: DNS: "1.1.1.256" is not an IP address',
    '6: DNS: "bad;name" is neither an IP address nor a search domain',
    '8: MTU: "abc" is not a number from 68 to 65535',
    "9: MTU: 1200 is below 1280, the smallest MTU IPv6 works with (Address has IPv6)",
    '13: Table: "Off" is not auto, off, a table number or a name from /etc/iproute2/rt_tables',
  ]);
  // Without the rt_tables name, `vpn' is unknown too.
  assert.ok(
    lines(checkQuickKeys(cfg)).includes(
      '12: Table: "vpn" is not auto, off, a table number or a name from /etc/iproute2/rt_tables',
    ),
  );
  assert.deepEqual(checkQuickKeys(quick("[Interface]\nAddress = 10.0.0.1\nMTU = 68\n")), []);
});

Deno.test("rtTableNames() reads NUMBER NAME lines, comments and blanks skipped", () => {
  assert.deepEqual(rtTableNames("#\n255\tlocal\n254 main # x\n\n0x10 vpn\nbad line\n"), [
    "local",
    "main",
    "vpn",
  ]);
});

Deno.test("checkWgLines() finds wg's errors by line and never shows a key", async () => {
  const short = KEY.slice(0, 43);
  const text = [
    "[Interface]", // 1
    `PrivateKey = ${short}`, // 2
    "ListenPort = no-such-service", // 3
    "FwMark = nope", // 4
    `PresharedKey = ${KEY}`, // 5: a peer key in [Interface]
    "", // 6
    "[Peer]", // 7
    `PublicKey = ${KEY.slice(0, 42)}!=`, // 8
    "AllowedIPs = 10.0.0.0/33", // 9
    "Endpoint = 192.0.2.1", // 10
    "PersistentKeepalive = 70000", // 11
    KEY, // 12: a bare key
    "[Peer]", // 13
    "AllowedIPs = 10.1.0.0/16", // 14
    "[Peers]", // 15
  ].join("\n") + "\n";
  const problems = await checkWgLines(quick(text).wgLines, { resolver, env: {} });
  const got = lines(problems);
  assert.deepEqual(got.map((l) => l.split(":")[0]), [
    "2",
    "3",
    "4",
    "5",
    "7",
    "8",
    "9",
    "10",
    "11",
    "12",
    "13",
    "15",
  ]);
  assert.match(got[0], /^2: PrivateKey is not a valid key: it has 43 characters/);
  assert.match(got[3], /^5: PresharedKey is not a key of \[Interface\]$/);
  // The peer of line 7 lost its key on line 8.
  assert.equal(got[4], "7: [Peer] has no PublicKey");
  assert.match(got[5], /^8: PublicKey is not a valid key: not canonical base64/);
  assert.match(got[6], /^9: AllowedIP is not in the correct format: `10.0.0.0\/33'$/);
  assert.match(got[7], /^10: Unable to find port of endpoint: `192.0.2.1'$/);
  assert.match(got[9], /^12: not a section header nor a `Key = value' line/);
  assert.equal(got[10], "13: [Peer] has no PublicKey");
  assert.equal(got[11], "15: unknown section [Peers]");
  assert.match(got[1], /^3: Name or service not known: `no-such-service'$/);
  // Not a piece of any key in any message.
  for (const message of got) {
    for (let i = 0; i + 8 <= KEY.length; i++) {
      assert.ok(!message.includes(KEY.slice(i, i + 8)), `${message} shows part of a key`);
    }
  }
});

Deno.test("checkWgLines() leaves names unresolved; buildWgDevice() resolves them", async () => {
  const text = `[Interface]\nPrivateKey = ${KEY}\nListenPort = 51820\n\n[Peer]\n` +
    `PublicKey = ${PUB}\nAllowedIPs = 10.0.0.1/24\nEndpoint = host.invalid:51820\n`;
  const cfg = quick(text);
  const notices: string[] = [];
  const opts = {
    resolver,
    env: {},
    notice: (line: number, t: string) => notices.push(`${line}: ${t}`),
  };
  assert.deepEqual(await checkWgLines(cfg.wgLines, opts), []);
  // wg's warning for host bits comes through as a notice.
  assert.deepEqual(notices, ["7: Warning: AllowedIP has nonzero host part: 10.0.0.1/24\n"]);
  const built = await buildWgDevice(cfg.wgLines, opts);
  assert.deepEqual(lines(built.problems), ["8: Name or service not known: `host.invalid:51820'"]);
  assert.equal(built.device, null);

  const ok = await buildWgDevice(quick(text.replace("host.invalid", "192.0.2.7")).wgLines, opts);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.device!.listenPort, 51820);
  assert.equal(ok.device!.peers.length, 1);
  assert.deepEqual([...ok.device!.peers[0].endpoint!.addr], [192, 0, 2, 7]);
});

Deno.test("checkHooks() checks every hook with %i replaced and names the key", async () => {
  const cfg = quick(
    "[Interface]\nPreUp = echo %i\nPostUp = echo (\nPreDown = true\nPostDown = if x; then\n",
  );
  const seen: string[] = [];
  const problems = await checkHooks(cfg, (script) => {
    seen.push(script);
    return Promise.resolve(script.includes("(") || script.includes("then") ? "bad" : null);
  });
  assert.deepEqual(seen, ["echo wg0", "echo (", "true", "if x; then"]);
  assert.deepEqual(lines(problems), ["3: PostUp: bad", "5: PostDown: bad"]);
});

Deno.test({
  name: "checkHooks() with bash -n: extglob patterns parse, a broken hook does not",
  ignore: !hasTool("bash"),
  async fn() {
    const cfg = quick("[Interface]\nPostUp = ls !(x) >/dev/null\nPostDown = echo )\n");
    const problems = await checkHooks(cfg, async (script) => {
      const r = await run("bash", ["-n", "-O", "extglob", "-c", script]);
      return r.code === 0 ? null : r.stderr.split("\n")[0];
    });
    assert.deepEqual(problems.map((p) => p.line), [3]);
    assert.match(problems[0].message, /^PostDown: .*syntax error/);
  },
});
