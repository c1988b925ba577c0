// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The skip policy: what a test needs from the machine (root, /dev/net/tun,
 * tools on PATH, built files, FFI permission), and what its `ignore:` gets.
 *
 * Outside CI a test whose needs are not met is ignored and the reason is
 * printed once per label. With `CI=true` (or `CI=1`; .ci/run sets it) a CI
 * machine is expected to provide every one of them, so nothing missing may
 * pass as a skip: the test is NOT ignored (it runs and fails where it uses the
 * missing piece), and one extra test, named after the label and what is
 * missing, fails with that list. The only skips left under CI are the ones
 * made with {@link skipBecause}, for conditions that are not a missing tool or
 * privilege (each prints its reason).
 */
import { existsSync } from "node:fs";
import { hasTool, isRoot } from "./proc.ts";

/** What a group of tests needs. */
export interface Needs {
  /** uid 0 (network namespaces, TUN devices, raw sockets). */
  root?: boolean;
  /** Linux with /dev/net/tun. */
  tun?: boolean;
  /** Executables that must be on PATH. */
  tools?: readonly string[];
  /** Files that must exist (e.g. the built dist/gotatun). */
  files?: readonly string[];
  /** Deno's permission to load native libraries. */
  ffi?: boolean;
  /** Anything else, as "what is missing when false" → whether it is there. */
  other?: Readonly<Record<string, boolean>>;
}

/** True when the environment says this is a CI run. */
export function inCi(): boolean {
  let v: string | undefined;
  try {
    v = Deno.env.get("CI");
  } catch {
    return false;
  }
  return v === "true" || v === "1";
}

/** missing() lists what of `needs` this machine lacks, one phrase each. */
export function missing(needs: Needs): string[] {
  const out: string[] = [];
  if ((needs.root || needs.tun) && Deno.build.os !== "linux") out.push("Linux");
  if (needs.root && !isRoot()) out.push("root (uid 0)");
  if (needs.tun && !existsSync("/dev/net/tun")) out.push("/dev/net/tun");
  const tools = (needs.tools ?? []).filter((t) => !hasTool(t));
  if (tools.length > 0) out.push(`tools on PATH: ${tools.join(", ")}`);
  for (const f of needs.files ?? []) if (!existsSync(f)) out.push(`file ${f}`);
  if (needs.ffi && Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
    out.push("--allow-ffi");
  }
  for (const [what, there] of Object.entries(needs.other ?? {})) if (!there) out.push(what);
  return out;
}

const reported = new Set<string>();

/**
 * unmet() is the skip decision for the tests `label` names: "" when they
 * run, else the reason they are ignored (printed once). Under CI it is always
 * "" and a failing test reports what is missing (see the module doc).
 */
export function unmet(label: string, needs: Needs): string {
  const lacking = missing(needs);
  if (lacking.length === 0) return "";
  const reason = `missing ${lacking.join("; ")}`;
  const key = `${label}\n${reason}`;
  const first = !reported.has(key);
  reported.add(key);
  if (!inCi()) {
    // deno-lint-ignore no-console
    if (first) console.log(`[skip] ${label}: ${reason}`);
    return reason;
  }
  if (first) {
    Deno.test(`${label}: CI=true but ${reason}`, () => {
      throw new Error(
        `CI=true and ${label} lacks: ${lacking.join("; ")}. ` +
          "Install it (bash .ci/setup) or run as root; only outside CI is this a skip.",
      );
    });
  }
  return "";
}

/** ignoreUnless() is {@link unmet} as the boolean `Deno.test({ ignore })` wants. */
export function ignoreUnless(label: string, needs: Needs): boolean {
  return unmet(label, needs) !== "";
}

/**
 * skipBecause() is a skip that stays one under CI, for a condition that is no
 * missing tool or privilege (`reason` "" means run). Prints the reason once.
 */
export function skipBecause(label: string, reason: string): boolean {
  if (reason === "") return false;
  const key = `${label}\n${reason}`;
  if (!reported.has(key)) {
    reported.add(key);
    // deno-lint-ignore no-console
    console.log(`[skip] ${label}: ${reason}`);
  }
  return true;
}
