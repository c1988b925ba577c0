// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The warning banner is printed only where it is true: the kernel has the
 * WireGuard module and wg-quick did not start us (cli/banner.ts).
 */
import assert from "node:assert/strict";
import {
  bannerText,
  bannerWanted,
  listsWireGuard,
  parentName,
  wireguardModuleAvailable,
} from "../../cli/banner.ts";

const MODULE = { wireguardModule: true, parentName: "bash" };

Deno.test("bannerWanted() needs the module and a caller other than wg-quick", () => {
  assert.equal(bannerWanted({}, MODULE), true);
  assert.equal(bannerWanted({}, { ...MODULE, wireguardModule: false }), false);
  assert.equal(bannerWanted({ WG_PROCESS_FOREGROUND: "1" }, MODULE), false);
  assert.equal(bannerWanted({}, { ...MODULE, parentName: "wg-quick" }), false);
  assert.equal(bannerWanted({ WG_QUICK_USERSPACE_IMPLEMENTATION: "gotatun" }, MODULE), false);
  // An empty variable is no sign of wg-quick, and an unknown parent is not wg-quick.
  assert.equal(bannerWanted({ WG_QUICK_USERSPACE_IMPLEMENTATION: "" }, MODULE), true);
  assert.equal(bannerWanted({}, { ...MODULE, parentName: null }), true);
});

Deno.test("bannerText() is wireguard-go's box with our name", () => {
  const lines = bannerText().trimEnd().split("\n");
  assert.match(lines[2], /Running gotatun is not required because this/);
  // Every line of the box has the same width.
  assert.equal(new Set(lines.map((l) => [...l].length)).size, 1);
});

Deno.test("listsWireGuard() finds wireguard.ko in modules.dep and modules.builtin", () => {
  assert.equal(
    listsWireGuard(
      "kernel/net/ipv4/udp_tunnel.ko.xz:\n" +
        "kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\n",
    ),
    true,
  );
  assert.equal(listsWireGuard("kernel/drivers/net/wireguard/wireguard.ko\n"), true);
  assert.equal(listsWireGuard("kernel/drivers/net/wireguard/wireguard.ko.zst:\n"), true);
  // A module that merely depends on it, or a similar name, is not it.
  assert.equal(
    listsWireGuard("kernel/x/foo.ko: kernel/drivers/net/wireguard/wireguard.ko\n"),
    false,
  );
  assert.equal(listsWireGuard("kernel/drivers/net/notwireguard.ko:\n"), false);
  assert.equal(listsWireGuard(""), false);
});

Deno.test("wireguardModuleAvailable() reads /sys/module and /lib/modules under a root", async () => {
  const root = await Deno.makeTempDir({ prefix: "gotatun-banner-" });
  try {
    assert.equal(wireguardModuleAvailable(root, "6.1.0-test"), false);
    const dir = `${root}/lib/modules/6.1.0-test`;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(`${dir}/modules.dep`, "kernel/fs/ext4/ext4.ko.xz:\n");
    assert.equal(wireguardModuleAvailable(root, "6.1.0-test"), false);
    await Deno.writeTextFile(
      `${dir}/modules.dep`,
      "kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\n",
    );
    assert.equal(wireguardModuleAvailable(root, "6.1.0-test"), true);
    // Another kernel's list does not count.
    assert.equal(wireguardModuleAvailable(root, "6.2.0-other"), false);
    await Deno.mkdir(`${root}/sys/module/wireguard`, { recursive: true });
    assert.equal(wireguardModuleAvailable(root, "6.2.0-other"), true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("parentName() names the process that started us (wg-quick, for wg-quick)", async () => {
  // A shell script named wg-quick that runs a child and waits for it (no exec),
  // as wg-quick runs its userspace implementation.
  const dir = await Deno.makeTempDir({ prefix: "gotatun-banner-" });
  try {
    const probe = `${dir}/probe.ts`;
    await Deno.writeTextFile(
      probe,
      `import { parentName } from ${
        JSON.stringify(new URL("../../cli/banner.ts", import.meta.url).href)
      };\n` +
        `console.log(parentName());\n`,
    );
    await Deno.writeTextFile(`${dir}/wg-quick`, `#!/bin/sh\n"$@"\nexit $?\n`, { mode: 0o755 });
    const r = await new Deno.Command(`${dir}/wg-quick`, {
      // Deno reads /proc/PID files only with --allow-all, which the bundle has.
      args: [Deno.execPath(), "run", "--no-config", "--allow-all", probe],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.equal(new TextDecoder().decode(r.stdout), "wg-quick\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  // This test runner's own parent is not wg-quick.
  assert.notEqual(parentName(), "wg-quick");
});
