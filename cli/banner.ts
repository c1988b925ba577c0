// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * wireguard-go's warning banner ("Running wireguard-go is not required because
 * this kernel has first class support for WireGuard"), printed only where it
 * is true. wireguard-go prints it on Linux whenever `WG_PROCESS_FOREGROUND` is
 * not `1`; we also require that the kernel has the module (loaded, built in,
 * or listed by `modules.dep` so that `modprobe` can load it), and that
 * wg-quick did not start us: wg-quick falls back to a userspace
 * implementation only after `ip link add … type wireguard` failed, so the
 * banner would contradict its own "[!] Missing WireGuard kernel module".
 */
import type { Env } from "./args.ts";

/** What the banner decision needs to know about the host. */
export interface HostFacts {
  /** The WireGuard module is loaded, built in, or installed ({@link wireguardModuleAvailable}). */
  readonly wireguardModule: boolean;
  /** The parent process's name (`/proc/PPID/comm`), null when unknown. */
  readonly parentName: string | null;
}

/**
 * bannerWanted() is true when the banner is to be printed: not in
 * `WG_PROCESS_FOREGROUND=1` mode (wireguard-go's only rule), the kernel has the
 * module, and neither wg-quick's environment variable nor a parent process
 * named `wg-quick` says that wg-quick started us.
 */
export function bannerWanted(env: Env, host: HostFacts): boolean {
  if (env.WG_PROCESS_FOREGROUND === "1") return false;
  if (!host.wireguardModule) return false;
  const viaQuick = (env.WG_QUICK_USERSPACE_IMPLEMENTATION ?? "") !== "" ||
    host.parentName === "wg-quick";
  return !viaQuick;
}

/** The warning itself, wireguard-go's box (main.go `warning()`) with our name. */
export function bannerText(): string {
  const lines = [
    "",
    "Running gotatun is not required because this",
    "kernel has first class support for WireGuard. For",
    "information on installing the kernel module,",
    "please visit:",
    "      https://www.wireguard.com/install/",
    "",
  ];
  const width = 54;
  const bar = "─".repeat(width);
  return [
    `┌${bar}┐`,
    ...lines.map((l) => `│${(l === "" ? "" : "   " + l).padEnd(width)}│`),
    `└${bar}┘`,
    "",
  ].join("\n");
}

/**
 * listsWireGuard() is true when a `modules.dep` or `modules.builtin` text has
 * a line for `wireguard.ko` (compressed or not), e.g.
 * `kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/lib/crypto/…`.
 */
export function listsWireGuard(text: string): boolean {
  return /^(?:\S*\/)?wireguard\.ko(?:\.[a-z0-9]+)?(?::|$)/m.test(text);
}

/**
 * wireguardModuleAvailable() looks under `root` (the file system root; tests
 * pass a directory) for `/sys/module/wireguard`, then for wireguard in
 * `/lib/modules/RELEASE/modules.builtin` and `modules.dep`. Anything it cannot
 * read counts as absent.
 */
export function wireguardModuleAvailable(root = "/", release = kernelRelease()): boolean {
  const base = root.replace(/\/+$/, "");
  try {
    Deno.statSync(`${base}/sys/module/wireguard`);
    return true;
  } catch {
    // not loaded (or /sys not readable)
  }
  if (release === null) return false;
  for (const file of ["modules.builtin", "modules.dep"]) {
    try {
      if (listsWireGuard(Deno.readTextFileSync(`${base}/lib/modules/${release}/${file}`))) {
        return true;
      }
    } catch {
      // no such list
    }
  }
  return false;
}

/** parentName() reads `/proc/PPID/comm`, the parent's name; null when it cannot. */
export function parentName(): string | null {
  try {
    return Deno.readTextFileSync(`/proc/${Deno.ppid}/comm`).trim();
  } catch {
    return null;
  }
}

/** The facts about this host and process, for {@link bannerWanted}. */
export function hostFacts(): HostFacts {
  return { wireguardModule: wireguardModuleAvailable(), parentName: parentName() };
}

function kernelRelease(): string | null {
  try {
    return Deno.osRelease();
  } catch {
    return null;
  }
}
