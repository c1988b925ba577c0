// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The wg-quick configuration format (cli/quick/config.ts) against
 * wg-quick(8)'s `parse_options` and `save_config`: hand-written cases, and
 * `strip` compared byte for byte with the installed `wg-quick strip` on
 * awkward files (root only, as wg-quick insists on root even for strip).
 */
import assert from "node:assert/strict";
import {
  briefAddresses,
  configPathFor,
  interfaceFromPath,
  nameserversOf,
  parseQuickConfig,
  QuickConfigError,
  readLines,
  resolvconfInput,
  resolvconfPrefix,
  savedConfig,
  stripText,
  tableIsAuto,
} from "../../../cli/quick/config.ts";
import { run } from "../../_util/proc.ts";
import { ignoreUnless } from "../../_util/needs.ts";

Deno.test("configPathFor() maps bare interface names to /etc/wireguard, paths unchanged", () => {
  assert.equal(configPathFor("wg0"), "/etc/wireguard/wg0.conf");
  assert.equal(configPathFor("a_b=c+d.e-f"), "/etc/wireguard/a_b=c+d.e-f.conf");
  // A bare "wg0.conf" is a valid name, so wg-quick reads /etc/wireguard/wg0.conf.conf.
  assert.equal(configPathFor("wg0.conf"), "/etc/wireguard/wg0.conf.conf");
  assert.equal(configPathFor("./wg0.conf"), "./wg0.conf");
  assert.equal(configPathFor("/tmp/x/wg0.conf"), "/tmp/x/wg0.conf");
  // 16 characters is too long for a name: taken as a path.
  assert.equal(configPathFor("abcdefghijklmnop"), "abcdefghijklmnop");
});

Deno.test("interfaceFromPath() takes the basename before .conf, 1 to 15 valid characters", () => {
  assert.equal(interfaceFromPath("/etc/wireguard/wg0.conf"), "wg0");
  assert.equal(interfaceFromPath("wg1.conf"), "wg1");
  assert.equal(interfaceFromPath("/a/b.c.conf"), "b.c");
  assert.equal(interfaceFromPath("/a/abcdefghijklmno.conf"), "abcdefghijklmno");
  assert.equal(interfaceFromPath("/a/abcdefghijklmnop.conf"), null);
  assert.equal(interfaceFromPath("/a/wg 0.conf"), null);
  assert.equal(interfaceFromPath("/a/wg0.cfg"), null);
  assert.equal(interfaceFromPath("/a/.conf"), null);
});

Deno.test("readLines() reads like bash `read -r` with the unterminated-line rule", () => {
  assert.deepEqual(readLines("  a b \t\n\tc\n"), ["a b", "c"]);
  assert.deepEqual(readLines("a\nlast"), ["a", "last"]);
  assert.deepEqual(readLines("a\n   "), ["a"]);
  assert.deepEqual(readLines("a\n\n"), ["a", ""]);
  assert.deepEqual(readLines("x\0y\r\n"), ["xy\r"]);
  assert.deepEqual(readLines("a\nlast", false), ["a"]);
});

Deno.test("parseQuickConfig() takes the wg-quick keys out of [Interface] only", () => {
  const cfg = parseQuickConfig(
    "wg0",
    [
      "[Interface]",
      "PrivateKey = abc",
      "Address = 10.0.0.1/24, fd00::1/64 # two",
      "ADDRESS=10.0.0.2",
      "dns = 1.1.1.1,example.com fd00::53 corp",
      "MTU = 1400",
      "mtu = 1380",
      "Table = off",
      "PreUp = echo one # kept",
      "PostUp = echo a=b",
      "PreDown = true",
      "PostDown = false",
      "SaveConfig = TRUE",
      "ListenPort = 51820",
      "",
      "[Peer]",
      "Address = 1.2.3.4",
      "PublicKey = def",
      "[interface]",
      "MTU = 1300",
    ].join("\n") + "\n",
  );
  assert.deepEqual(cfg.addresses, ["10.0.0.1/24", "fd00::1/64", "10.0.0.2"]);
  assert.deepEqual(cfg.dns, ["1.1.1.1", "fd00::53"]);
  assert.deepEqual(cfg.dnsSearch, ["example.com", "corp"]);
  assert.equal(cfg.mtu, "1300");
  assert.equal(cfg.table, "off");
  assert.deepEqual(cfg.preUp, ["echo one # kept"]);
  assert.deepEqual(cfg.postUp, ["echo a=b"]);
  assert.deepEqual(cfg.preDown, ["true"]);
  assert.deepEqual(cfg.postDown, ["false"]);
  assert.equal(cfg.saveConfig, true);
  assert.equal(
    cfg.wgConfig,
    "[Interface]\nPrivateKey = abc\nListenPort = 51820\n\n[Peer]\nAddress = 1.2.3.4\n" +
      "PublicKey = def\n[interface]\n",
  );
  assert.equal(stripText(cfg), cfg.wgConfig + "\n");
});

Deno.test("parseQuickConfig() keys are cut at the first = and #, and need an exact key", () => {
  const cfg = parseQuickConfig(
    "wg0",
    "[Interface] # c\n#Address = 1.1.1.1\nAddress2 = 9.9.9.9\n Address\t=\t10.1.1.1\t\n" +
      "Table=1234\nSaveConfig = false\n",
  );
  assert.deepEqual(cfg.addresses, ["10.1.1.1"]);
  assert.equal(cfg.table, "1234");
  assert.equal(cfg.saveConfig, false);
  assert.equal(cfg.wgConfig, "[Interface] # c\n#Address = 1.1.1.1\nAddress2 = 9.9.9.9\n");
  // Without an [Interface] header nothing is taken.
  assert.deepEqual(parseQuickConfig("wg0", "Address = 1.2.3.4\n").addresses, []);
});

Deno.test("parseQuickConfig() rejects SaveConfig values other than true/false", () => {
  assert.throws(
    () => parseQuickConfig("wg0", "[Interface]\nSaveConfig = yes\n"),
    (e: unknown) =>
      e instanceof QuickConfigError && e.message === "`yes' is neither true nor false",
  );
});

Deno.test("tableIsAuto() is true for an empty or `auto' Table only (case-sensitive, as wg-quick)", () => {
  assert.equal(tableIsAuto(""), true);
  assert.equal(tableIsAuto("auto"), true);
  assert.equal(tableIsAuto("Auto"), false);
  assert.equal(tableIsAuto("1234"), false);
});

Deno.test("savedConfig() replaces the first [Interface] line of showconf with the wg-quick keys", () => {
  const cfg = parseQuickConfig(
    "wg0",
    "[Interface]\nMTU = 1400\nTable = 1234\nSaveConfig = true\nPreUp = a %i\nPostUp = b\n" +
      "PreDown = c\nPostDown = d\nDNS = 9.9.9.9\n",
  );
  const text = savedConfig(cfg, {
    showconf: "[Interface]\nListenPort = 1\nPrivateKey = k\n\n[Peer]\nPublicKey = p\n\n\n",
    addresses: ["10.0.0.1/24", "fd00::1/64"],
    dns: ["9.9.9.9"],
    linkMtu: 1380,
  });
  assert.equal(
    text,
    "[Interface]\nAddress = 10.0.0.1/24\nAddress = fd00::1/64\nDNS = 9.9.9.9\nMTU = 1380\n" +
      "Table = 1234\nSaveConfig = true\nPreUp = a %i\nPostUp = b\nPreDown = c\nPostDown = d\n" +
      "ListenPort = 1\nPrivateKey = k\n\n[Peer]\nPublicKey = p\n",
  );
  // No MTU key in the file: the live MTU is not saved.
  const plain = parseQuickConfig("wg0", "[Interface]\n");
  assert.equal(
    savedConfig(plain, { showconf: "[Interface]\n\n", addresses: [], dns: [], linkMtu: 1420 }),
    "[Interface]\n",
  );
});

Deno.test("briefAddresses() and nameserversOf() read ip -brief and resolvconf records", () => {
  assert.deepEqual(
    briefAddresses(
      "wg0",
      "wg0              UNKNOWN        10.0.0.1/24 fd00::1/64 fe80::1/64 \n",
    ),
    ["10.0.0.1/24", "fd00::1/64", "fe80::1/64"],
  );
  assert.deepEqual(briefAddresses("wg0", "wg0              DOWN           \n"), []);
  assert.deepEqual(briefAddresses("wg0", "wg01             UP             1.1.1.1/32\n"), []);
  assert.deepEqual(
    nameserversOf("nameserver 1.1.1.1\nsearch a b\nnameserver fd00::53%eth0\nnameserver bad!\n"),
    ["1.1.1.1", "fd00::53%eth0"],
  );
});

Deno.test("resolvconfInput() and resolvconfPrefix() follow set_dns and resolvconf_iface_prefix", () => {
  const cfg = parseQuickConfig("wg0", "[Interface]\nDNS = 1.1.1.1, a.example, fd00::1, b\n");
  assert.equal(
    resolvconfInput(cfg),
    "nameserver 1.1.1.1\nnameserver fd00::1\nsearch a.example b\n",
  );
  assert.equal(resolvconfPrefix(null, false), "");
  assert.equal(resolvconfPrefix("lo.inet*\ntun*\nwg*\n", false), "tun.");
  assert.equal(resolvconfPrefix("tun*\n", true), "");
  assert.equal(resolvconfPrefix("eth0\n", false), "");
});

/** Awkward files whose `strip` output must equal the installed wg-quick's. */
const STRIP_CASES: Record<string, string> = {
  plain: "[Interface]\nPrivateKey = x\nAddress = 10.0.0.1/24\nDNS = 1.1.1.1\n\n[Peer]\n" +
    "PublicKey = y\nAllowedIPs = 0.0.0.0/0\n",
  blanks: "  [Interface]  \n\tPrivateKey=x\t\n\t\nMTU\t=\t1400 \n   \n# c\n  ;x\n",
  crlf: "[Interface]\r\nAddress = 10.0.0.1/24\r\nPrivateKey = x\r\n",
  caseMix: "[INTERFACE]\naddress = 1.1.1.1\nSAVECONFIG = false\ntAbLe = off\n[pEER]\nMTU = 1\n",
  noNewline: "[Interface]\nAddress = 10.0.0.1\n  tail without newline ",
  blankTail: "[Interface]\nAddress = 10.0.0.1\n   ",
  hashes: "[Interface]\nPostUp = echo 'a # b'\nx = y # z\n#[Peer]\nDNS = 1.1.1.1 # x\n",
  sections: "[Peer]\nAddress = 1.1.1.1\n[Interface]\nAddress = 2.2.2.2\n[Interface2]\nMTU = 1\n",
  noEquals: "[Interface]\nAddress\nMTU\n=\n==\n= =\n",
  nul: "[Interface]\nPrivate\0Key = x\nAdd\0ress = 1.2.3.4\n",
};

Deno.test({
  name: "stripText() prints exactly what the installed `wg-quick strip` prints",
  ignore: ignoreUnless("test/cli/quick/config_test.ts", {
    root: true,
    tools: ["wg-quick", "bash"],
  }),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "gtq-strip-" });
    try {
      for (const [name, text] of Object.entries(STRIP_CASES)) {
        await t.step(name, async () => {
          const path = `${dir}/gtq0.conf`;
          await Deno.writeTextFile(path, text, { mode: 0o600 });
          const stock = await run("wg-quick", ["strip", path], { timeoutMs: 20_000 });
          assert.equal(stock.code, 0, stock.stderr);
          const ours = stripText(parseQuickConfig("gtq0", text));
          assert.equal(ours, stock.stdout);
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
