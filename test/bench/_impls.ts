// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Which wireguard-go the network benchmark compares against: the newest one
 * found among the known places (a build from source in
 * ~/.cache/gotatun-anchors/, /usr/local/bin, /usr/bin — Debian's package,
 * which bookworm-backports also installs there — and PATH), judged by what
 * `wireguard-go --version` prints ("wireguard-go v0.0.20250522"). Version
 * strings and the labels of the report's columns are parsed here too.
 */
import { run } from "../_util/proc.ts";

/** A program found with the version it printed. */
export interface Found {
  path: string;
  /** First line of `--version`, e.g. "wireguard-go v0.0.20250522"; "?" when it printed none. */
  versionLine: string;
  /** The dotted version from that line, e.g. "0.0.20250522"; "" when there is none. */
  version: string;
}

/** versionOf() picks the dotted version out of a `--version` line ("" when there is none). */
export function versionOf(line: string): string {
  const m = /\bv?(\d+(?:\.\d+)+)\b/.exec(line);
  return m ? m[1] : "";
}

/** compareVersions() orders dotted versions numerically ("" sorts first); <0, 0 or >0. */
export function compareVersions(a: string, b: string): number {
  const pa = a === "" ? [] : a.split(".").map(Number);
  const pb = b === "" ? [] : b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? -1) - (pb[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** label() is what the report calls an implementation: its name and version, once. */
export function label(name: string, versionLine: string): string {
  const v = versionOf(versionLine);
  if (v === "" || name.includes(v)) return name;
  return `${name} ${v}`;
}

function isExecutable(path: string): boolean {
  try {
    const st = Deno.statSync(path);
    return st.isFile && ((st.mode ?? 0) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Where a wireguard-go may be, in order of preference for a tie; only existing files. */
export function candidatePaths(): string[] {
  const out: string[] = [];
  const home = Deno.env.get("HOME");
  if (home) {
    const dir = `${home}/.cache/gotatun-anchors`;
    try {
      const names = [...Deno.readDirSync(dir)].map((e) => e.name)
        .filter((n) => n.startsWith("wireguard-go") && !n.includes(".")).sort();
      out.push(...names.map((n) => `${dir}/${n}`));
    } catch {
      // no builds from source
    }
  }
  out.push("/usr/local/bin/wireguard-go", "/usr/bin/wireguard-go");
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir !== "") out.push(`${dir}/wireguard-go`);
  }
  const seen = new Set<string>();
  return out.filter((p) => {
    let real = p;
    try {
      real = Deno.realPathSync(p);
    } catch {
      return false;
    }
    if (seen.has(real) || !isExecutable(p)) return false;
    seen.add(real);
    return true;
  });
}

/** firstLine() is the first line a command prints (stdout, else stderr), or "?". */
export async function firstLine(cmd: string, args: readonly string[]): Promise<string> {
  try {
    const r = await run(cmd, args, { timeoutMs: 20_000, env: { NO_COLOR: "1" } });
    return (r.stdout || r.stderr).split("\n")[0].trim() || "?";
  } catch {
    return "?";
  }
}

/** findWireguardGo() asks every candidate its version; all of them, newest first. */
export async function findWireguardGo(): Promise<Found[]> {
  const found: Found[] = [];
  for (const path of candidatePaths()) {
    const line = await firstLine(path, ["--version"]);
    if (!/wireguard-go/i.test(line)) continue;
    found.push({ path, versionLine: line, version: versionOf(line) });
  }
  return found.sort((a, b) => compareVersions(b.version, a.version));
}
