// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `gotatun`, a drop-in for `wireguard-go`: `gotatun [-f|--foreground] IFNAME`
 * creates the TUN interface and serves `/var/run/wireguard/IFNAME.sock`;
 * `gotatun --version`; `gotatun help`. Exit codes as wireguard-go main.go:
 * 0 for success and for usage errors, 1 when setup failed; also 1 for a
 * misspelt command (`gotatun shwo`), which creates nothing.
 *
 * @see {@link parseArgs} for the command line, {@link daemonize} and
 * {@link runForeground} for the daemon.
 */
import { helpText, ifaceNameProblem, parseArgs, unknownCommandText, usageText } from "./args.ts";
import { bannerText, bannerWanted, hostFacts } from "./banner.ts";
import { daemonize, runForeground, writeStderr, writeStdout } from "./daemon.ts";
import { runDemo } from "./demo.ts";
import { VERSION, versionText } from "./version.ts";
import { createLogger } from "../src/log.ts";
import { inWorker, runCryptoWorker } from "../src/crypto_workers.ts";
import { isDataplaneInit, runDataplaneWorker } from "./daemon_worker.ts";
import { isHandshakeWorkerInit, runHandshakeWorker } from "../src/handshake_workers.ts";
import { envObject } from "./env.ts";

/** The program name for usage text, like Go's os.Args[0]. */
function argv0(): string {
  if (Deno.build.standalone) return Deno.execPath();
  const main = Deno.mainModule;
  if (main.startsWith("file:") && !/\.[cm]?[jt]s$/.test(main)) {
    return decodeURIComponent(new URL(main).pathname);
  }
  return "gotatun";
}

/** main() runs one invocation and returns its exit code. */
export async function main(argv: readonly string[], env: Record<string, string>): Promise<number> {
  const inv = parseArgs(argv, env);
  switch (inv.kind) {
    case "version":
      writeStdout(versionText());
      return 0;
    case "help":
      writeStdout(helpText(argv0()));
      return 0;
    case "demo":
      return await runDemo(inv.args);
    case "wg": {
      const { wgMain } = await import("./wg/main.ts");
      return await wgMain(inv.args, env);
    }
    case "quick": {
      const { quickMain } = await import("./quick/main.ts");
      return await quickMain(inv.args, env);
    }
    case "top": {
      const { topMain } = await import("./top.ts");
      return await topMain(inv.args, env);
    }
    case "proxy": {
      const { proxyMain } = await import("./proxy.ts");
      return await proxyMain(inv.args, env);
    }
    case "forward": {
      const { forwardMain } = await import("./forward.ts");
      return await forwardMain(inv.args, env);
    }
    case "unknown":
      writeStderr(unknownCommandText(argv0(), inv.word, inv.suggestions));
      return 1;
    case "usage":
      if (inv.banner && bannerWanted(env, hostFacts())) writeStderr(bannerText());
      writeStdout(usageText(argv0()));
      return 0;
    case "daemon": {
      const opts = inv.options;
      if (opts.banner && bannerWanted(env, hostFacts())) writeStderr(bannerText());
      const log = createLogger(opts.logLevel, opts.iface, writeStdout);
      // A name the kernel cannot take fails here, before a daemon is started.
      const problem = opts.tunFd === null ? ifaceNameProblem(opts.iface) : null;
      if (problem !== null) {
        log.error(`Failed to create TUN device: ${problem}`);
        return 1;
      }
      if (opts.foreground) return await runForeground(opts);
      log.verbose(`Starting gotatun version ${VERSION}`);
      return await daemonize(opts, argv, log);
    }
  }
}

if (inWorker()) {
  // The daemon's Workers run this same module (one file, also bundled): the
  // data plane, and the crypto and handshake Workers it may start. Each takes its own
  // first message and ignores the other kind.
  runCryptoWorker();
  globalThis.addEventListener("message", (e: Event) => {
    const data = (e as MessageEvent).data;
    if (isDataplaneInit(data)) runDataplaneWorker(data);
    else if (isHandshakeWorkerInit(data)) runHandshakeWorker(data);
  });
} else if (import.meta.main) {
  try {
    // What this process starts with `deno run` (the daemon, wg-quick's wg, the demo's ends)
    // must not look up Deno's release server: a DNS query outside the tunnel.
    Deno.env.set("DENO_NO_UPDATE_CHECK", "1");
  } catch {
    // without --allow-env we behave as if nothing were set
  }
  const env = envObject();
  // Installed as `wg` (a symlink to gotatun): behave as wg(8).
  const invokedAs = Deno.build.standalone
    ? Deno.execPath()
    : decodeURIComponent(new URL(Deno.mainModule).pathname);
  const args = /(^|\/)wg$/.test(invokedAs) && !(Deno.args[0] === "wg")
    ? ["wg", ...Deno.args]
    : Deno.args;
  Deno.exit(await main(args, env));
}
