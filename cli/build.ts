// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Builds `dist/gotatun`, the one file wg-quick runs as
 * `WG_QUICK_USERSPACE_IMPLEMENTATION`:
 *
 * 1. `deno compile` when it can produce a working binary (it downloads
 *    `denort`, or uses `DENORT_BIN`). The result is checked by running
 *    `--version`: with `DENORT_BIN` pointing at a full `deno`, compile
 *    "succeeds" but writes a plain Deno REPL, which this rejects.
 * 2. Otherwise `deno bundle --minify` into one JS file behind a
 *    `#!/usr/bin/env -S DENO_NO_UPDATE_CHECK=1 deno run --no-config <flags>` line, mode
 *    755. It needs `deno` on PATH; the daemon re-executes it the same way.
 *
 * Usage: `deno run -A cli/build.ts [--install] [--bundle | --compile]`.
 * `--install` then copies the result to /usr/local/bin/gotatun (under
 * `$DESTDIR` if set); `--bundle`
 * skips the compile attempt, `--compile` fails instead of falling back.
 */
import { DENO_RUN_FLAGS, VERSION } from "./version.ts";

const ROOT = new URL("../", import.meta.url);
const DIST = new URL("dist/", ROOT);
const OUT = new URL("gotatun", DIST);
const INSTALL_PATH = "/usr/local/bin/gotatun";

/**
 * The shebang line of the bundled script. `DENO_NO_UPDATE_CHECK=1`: otherwise
 * `deno run` looks up Deno's release server once a day, a DNS query from the
 * daemon outside the tunnel (unmarked, so under a full tunnel it would even
 * take the tunnel's route).
 */
export function shebangLine(): string {
  return `#!/usr/bin/env -S DENO_NO_UPDATE_CHECK=1 deno run --no-config ${
    DENO_RUN_FLAGS.join(" ")
  }\n`;
}

function path(url: URL): string {
  return decodeURIComponent(url.pathname);
}

function say(line: string): void {
  // deno-lint-ignore no-console
  console.log(`build: ${line}`);
}

async function exec(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ ok: boolean; out: string }> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: path(ROOT),
    // Plain text for the error messages we quote.
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, opts.timeoutMs ?? 300_000);
  try {
    const r = await child.output();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the built file with `--version` and checks it really is gotatun. */
async function works(file: string): Promise<boolean> {
  const r = await exec(file, ["--version"], { timeoutMs: 60_000 });
  return r.ok && r.out.startsWith(`gotatun v${VERSION}\n`);
}

async function tryCompile(tmp: string): Promise<string | null> {
  const r = await exec(Deno.execPath(), [
    "compile",
    ...DENO_RUN_FLAGS,
    "--output",
    tmp,
    path(new URL("cli/main.ts", ROOT)),
  ]);
  if (!r.ok) return `deno compile failed: ${gist(r.out)}`;
  if (!(await works(tmp))) return "deno compile produced a binary that does not run gotatun";
  return null;
}

async function bundle(tmp: string): Promise<string | null> {
  const js = `${tmp}.js`;
  try {
    const r = await exec(Deno.execPath(), [
      "bundle",
      "--minify",
      "--platform",
      "deno",
      "--output",
      js,
      path(new URL("cli/main.ts", ROOT)),
    ]);
    if (!r.ok) return `deno bundle failed: ${gist(r.out)}`;
    const body = await Deno.readTextFile(js);
    // Drop a shebang the bundler may have kept, so ours is the only one.
    const code = body.startsWith("#!") ? body.slice(body.indexOf("\n") + 1) : body;
    await Deno.writeTextFile(tmp, shebangLine() + code, { mode: 0o755 });
    await Deno.chmod(tmp, 0o755);
    if (!(await works(tmp))) return "the bundled script does not run (is deno on PATH?)";
    return null;
  } finally {
    await Deno.remove(js).catch(() => {});
  }
}

/** The gist of a Deno error: its "error:" line and the innermost "Caused by" entry. */
function gist(text: string): string {
  const cut = text.indexOf("Stack backtrace");
  const lines = (cut >= 0 ? text.slice(0, cut) : text).split("\n")
    .map((l) => l.trim());
  const error = lines.find((l) => l.startsWith("error:")) ?? lines.find((l) => l !== "") ?? "";
  const causes = lines.filter((l) => /^\d+: /.test(l));
  return causes.length > 0
    ? `${error} (${causes[causes.length - 1].replace(/^\d+: /, "")})`
    : error;
}

/** main() builds, optionally installs, and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const install = args.includes("--install");
  const forceBundle = args.includes("--bundle");
  const forceCompile = args.includes("--compile");
  await Deno.mkdir(DIST, { recursive: true });
  const tmp = `${path(OUT)}.tmp-${Deno.pid}`;
  let how: string;
  try {
    let why: string | null = "skipped (--bundle)";
    if (!forceBundle) why = await tryCompile(tmp);
    if (why === null) {
      how = "compiled with deno compile (self-contained binary; the compiled path is " +
        "not exercised by this repository's tests)";
    } else {
      if (forceCompile) {
        say(why);
        return 1;
      }
      say(`compile: ${why}; falling back to deno bundle`);
      const err = await bundle(tmp);
      if (err !== null) {
        say(err);
        return 1;
      }
      how = "bundled by deno bundle into a `deno run` script (needs deno on PATH)";
    }
    await Deno.rename(tmp, path(OUT));
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  say(`wrote ${path(OUT)}: ${how}`);
  if (install) {
    // DESTDIR, as in make install, stages the file under another root.
    const dest = (Deno.env.get("DESTDIR") ?? "").replace(/\/+$/, "") + INSTALL_PATH;
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    const staging = `${dest}.tmp-${Deno.pid}`;
    await Deno.copyFile(path(OUT), staging);
    await Deno.chmod(staging, 0o755);
    await Deno.rename(staging, dest);
    say(`installed ${dest}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
