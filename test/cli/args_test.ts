// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * parseArgs() against wireguard-go main.go's argument and environment rules.
 */
import assert from "node:assert/strict";
import {
  type DaemonOptions,
  editDistance,
  helpText,
  ifaceNameProblem,
  parseArgs,
  parseFd,
  suggestCommands,
  unknownCommandText,
  usageText,
} from "../../cli/args.ts";
import { LogLevel } from "../../src/log.ts";

function daemon(argv: string[], env: Record<string, string> = {}): DaemonOptions {
  const inv = parseArgs(argv, env);
  assert.equal(inv.kind, "daemon", `${JSON.stringify(argv)} should start the daemon`);
  if (inv.kind !== "daemon") throw new Error("unreachable");
  return inv.options;
}

Deno.test("parseArgs() accepts INTERFACE-NAME and -f/--foreground INTERFACE-NAME", () => {
  assert.deepEqual(
    [daemon(["wg0"]).iface, daemon(["wg0"]).foreground],
    ["wg0", false],
  );
  assert.deepEqual([daemon(["-f", "wg1"]).iface, daemon(["-f", "wg1"]).foreground], ["wg1", true]);
  assert.deepEqual(
    [daemon(["--foreground", "wg2"]).iface, daemon(["--foreground", "wg2"]).foreground],
    ["wg2", true],
  );
});

Deno.test("parseArgs() prints usage for every other shape, as wireguard-go", async (t) => {
  const cases: string[][] = [
    [],
    ["-f"],
    ["--foreground"],
    ["wg0", "extra"],
    ["-f", "wg0", "extra"],
    ["--version", "wg0"],
    ["wg0", "-f"],
    ["a", "b", "c", "d"],
  ];
  for (const argv of cases) {
    await t.step(JSON.stringify(argv), () => {
      assert.deepEqual(parseArgs(argv, {}), { kind: "usage", banner: true });
    });
  }
});

Deno.test("parseArgs() recognises --version only as the sole argument", () => {
  assert.deepEqual(parseArgs(["--version"], {}), { kind: "version" });
  // wireguard-go: `-f --version` names an interface "--version".
  assert.equal(daemon(["-f", "--version"]).iface, "--version");
  assert.equal(parseArgs(["--version", "x"], {}).kind, "usage");
});

Deno.test("parseArgs() recognises our own subcommands", () => {
  assert.deepEqual(parseArgs(["help"], {}), { kind: "help" });
  assert.deepEqual(parseArgs(["--help"], {}), { kind: "help" });
  assert.deepEqual(parseArgs(["-h"], {}), { kind: "help" });
  assert.deepEqual(parseArgs(["demo"], {}), { kind: "demo", args: [] });
  assert.deepEqual(parseArgs(["demo", "--x", "y"], {}), { kind: "demo", args: ["--x", "y"] });
  // Only as the first word: an interface may still be called so with -f.
  assert.equal(daemon(["-f", "help"]).iface, "help");
  assert.equal(parseArgs(["help", "me"], {}).kind, "usage");
});

Deno.test("parseArgs() WG_PROCESS_FOREGROUND=1 means -f and no banner", () => {
  const o = daemon(["wg0"], { WG_PROCESS_FOREGROUND: "1" });
  assert.equal(o.foreground, true);
  assert.equal(o.banner, false);
  assert.equal(daemon(["wg0"]).banner, true);
  // The banner is printed even with -f (main.go: warning() before parsing).
  assert.equal(daemon(["-f", "wg0"]).banner, true);
  // Only exactly "1" counts.
  assert.equal(daemon(["wg0"], { WG_PROCESS_FOREGROUND: "yes" }).foreground, false);
  assert.equal(daemon(["wg0"], { WG_PROCESS_FOREGROUND: "true" }).banner, true);
  assert.deepEqual(parseArgs([], { WG_PROCESS_FOREGROUND: "1" }), {
    kind: "usage",
    banner: false,
  });
});

Deno.test("parseArgs() LOG_LEVEL follows wireguard-go (default error)", async (t) => {
  const table: [string | undefined, number, boolean][] = [
    [undefined, LogLevel.Error, false],
    ["", LogLevel.Error, false],
    ["verbose", LogLevel.Verbose, true],
    ["debug", LogLevel.Verbose, true],
    ["error", LogLevel.Error, true],
    ["silent", LogLevel.Silent, false],
    ["info", LogLevel.Error, true],
    ["VERBOSE", LogLevel.Error, true],
  ];
  for (const [value, level, toCaller] of table) {
    await t.step(`LOG_LEVEL=${value}`, () => {
      const env: Record<string, string> = value === undefined ? {} : { LOG_LEVEL: value };
      const o = daemon(["wg0"], env);
      assert.equal(o.logLevel, level);
      assert.equal(o.logToCaller, toCaller);
    });
  }
});

Deno.test("parseArgs() reads WG_TUN_FD and WG_UAPI_FD as Go ParseUint(s, 10, 32)", () => {
  const o = daemon(["wg0"], { WG_TUN_FD: "3", WG_UAPI_FD: "4" });
  assert.equal(o.tunFd, 3);
  assert.equal(o.uapiFd, 4);
  assert.equal(o.envError, null);
  const none = daemon(["wg0"], { WG_TUN_FD: "", WG_UAPI_FD: "" });
  assert.equal(none.tunFd, null);
  assert.equal(none.uapiFd, null);
  const bad = daemon(["wg0"], { WG_TUN_FD: "three" });
  assert.deepEqual(bad.envError, { variable: "WG_TUN_FD", value: "three" });
  assert.equal(bad.tunFd, null);
  const badUapi = daemon(["wg0"], { WG_UAPI_FD: "-4" });
  assert.deepEqual(badUapi.envError, { variable: "WG_UAPI_FD", value: "-4" });
  // The TUN is opened first, so its error is the one reported.
  assert.equal(
    daemon(["wg0"], { WG_TUN_FD: "x", WG_UAPI_FD: "y" }).envError?.variable,
    "WG_TUN_FD",
  );
});

Deno.test("parseFd() rejects signs, spaces, and values above 32 bits", () => {
  assert.equal(parseFd(undefined), null);
  assert.equal(parseFd(""), null);
  assert.equal(parseFd("0"), 0);
  assert.equal(parseFd("007"), 7);
  assert.equal(parseFd("4294967295"), 4294967295);
  assert.equal(parseFd("4294967296"), undefined);
  assert.equal(parseFd("+3"), undefined);
  assert.equal(parseFd(" 3"), undefined);
  assert.equal(parseFd("3.0"), undefined);
  assert.equal(parseFd("0x3"), undefined);
});

Deno.test("usageText() is wireguard-go's usage line", () => {
  assert.equal(
    usageText("/usr/bin/gotatun"),
    "Usage: /usr/bin/gotatun [-f/--foreground] INTERFACE-NAME\n",
  );
  assert.ok(helpText("gotatun").startsWith("Usage: gotatun [-f/--foreground] INTERFACE-NAME\n"));
  assert.match(helpText("gotatun"), /LOG_LEVEL/);
});

Deno.test("parseArgs() sends wg(8), wg-quick(8) and top subcommands to the toolkit", () => {
  const env = {};
  assert.deepEqual(parseArgs(["genkey"], env), { kind: "wg", args: ["genkey"] });
  assert.deepEqual(parseArgs(["show", "wg0", "dump"], env), {
    kind: "wg",
    args: ["show", "wg0", "dump"],
  });
  assert.deepEqual(parseArgs(["wg", "set", "wg0"], env), { kind: "wg", args: ["set", "wg0"] });
  assert.deepEqual(parseArgs(["up", "wg0"], env), { kind: "quick", args: ["up", "wg0"] });
  assert.deepEqual(parseArgs(["strip", "/etc/wireguard/wg0.conf"], env), {
    kind: "quick",
    args: ["strip", "/etc/wireguard/wg0.conf"],
  });
  assert.deepEqual(parseArgs(["top"], env), { kind: "top", args: [] });
  // Anything else is still wireguard-go's command line.
  assert.equal(parseArgs(["wg0"], env).kind, "daemon");
  assert.equal(parseArgs(["-f", "wg0"], env).kind, "daemon");
});

Deno.test("parseArgs() answers a close misspelling of a command instead of starting a daemon", () => {
  assert.deepEqual(parseArgs(["shwo"], {}), {
    kind: "unknown",
    word: "shwo",
    suggestions: ["show"],
  });
  assert.deepEqual(parseArgs(["--verison"], {}), {
    kind: "unknown",
    word: "--verison",
    suggestions: ["--version"],
  });
  // Also with arguments: `gotatun upp wg0.conf` is not wireguard-go's usage error.
  assert.equal(parseArgs(["upp", "wg0.conf"], {}).kind, "unknown");
  // -f and -- take any name, misspelt command or command.
  assert.equal(daemon(["-f", "shwo"]).iface, "shwo");
  assert.deepEqual(
    [daemon(["--", "shwo"]).iface, daemon(["--", "shwo"]).foreground],
    ["shwo", false],
  );
  assert.equal(daemon(["--", "show"]).iface, "show");
  assert.equal(daemon(["--", "x"], { WG_PROCESS_FOREGROUND: "1" }).foreground, true);
  assert.equal(parseArgs(["--"], {}).kind, "usage");
  assert.equal(parseArgs(["--", "a", "b"], {}).kind, "usage");
});

Deno.test("suggestCommands() leaves ordinary interface names alone", () => {
  for (const name of ["wg0", "ux0", "tun0", "eth0", "vpn", "tun", "wan", "lan", "home", "bogus"]) {
    assert.deepEqual(suggestCommands(name), [], name);
  }
  assert.deepEqual(suggestCommands("sohw"), ["show"]);
  assert.deepEqual(suggestCommands("genky"), ["genkey"]);
  assert.deepEqual(suggestCommands("syncconff"), ["syncconf"]);
  // Two edits only for commands longer than 4 characters.
  assert.deepEqual(suggestCommands("stirp"), ["strip"]);
  assert.deepEqual(suggestCommands("gnky"), ["genkey"]);
  assert.deepEqual(suggestCommands("shw0w"), []);
  // Exact commands are commands, not misspellings.
  assert.deepEqual(suggestCommands("show"), []);
});

Deno.test("editDistance() counts inserts, deletes, substitutions and swaps", () => {
  assert.equal(editDistance("show", "show"), 0);
  assert.equal(editDistance("shwo", "show"), 1);
  assert.equal(editDistance("shw", "show"), 1);
  assert.equal(editDistance("shoow", "show"), 1);
  assert.equal(editDistance("shaw", "show"), 1);
  assert.equal(editDistance("", "up"), 2);
  assert.equal(editDistance("kitten", "sitting"), 3);
});

Deno.test("unknownCommandText() suggests the command and says how to use the name anyway", () => {
  const text = unknownCommandText("gotatun", "shwo", ["show"]);
  assert.match(text, /"shwo" is not a command; did you mean "show"\?/);
  assert.match(text, /gotatun -- shwo/);
  assert.match(text, /gotatun -f shwo/);
});

Deno.test("ifaceNameProblem() says an over-long name is too long (max 15)", () => {
  assert.equal(ifaceNameProblem("wg0"), null);
  assert.equal(ifaceNameProblem("a".repeat(15)), null);
  assert.equal(
    ifaceNameProblem("a".repeat(16)),
    `interface name "${"a".repeat(16)}" is too long (max 15 characters)`,
  );
  // The kernel counts bytes: 8 two-byte characters are 16.
  assert.match(ifaceNameProblem("é".repeat(8)) ?? "", /too long/);
});

Deno.test("helpText() lists every environment variable the code reads", async () => {
  const help = helpText("gotatun");
  const names = new Set<string>();
  for (const dir of ["cli", "src", "uapi"]) {
    for await (const file of walkTs(new URL(`../../${dir}/`, import.meta.url))) {
      if (file.endsWith("/cli/build.ts")) continue; // the build tool, not gotatun
      const text = await Deno.readTextFile(file);
      for (const m of text.matchAll(/"((?:GOTATUN|WG)_[A-Z0-9_]+|LOG_LEVEL)"/g)) names.add(m[1]);
      for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1]);
      for (const m of text.matchAll(/\benv(?:Value|Duration)\("([A-Z0-9_]+)"/g)) names.add(m[1]);
    }
  }
  // The scan itself finds what it must.
  for (const known of ["GOTATUN_WORKERS", "GOTATUN_CRYPTO", "WG_UAPI_FD", "LOG_LEVEL"]) {
    assert.ok(names.has(known), `scan missed ${known}`);
  }
  const missing = [...names].filter((n) => !new RegExp(`\\b${n}\\b`).test(help));
  assert.deepEqual(missing, [], "variables missing from `gotatun help`");
});

async function* walkTs(dir: URL): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* walkTs(url);
    else if (entry.name.endsWith(".ts")) yield decodeURIComponent(url.pathname);
  }
}
