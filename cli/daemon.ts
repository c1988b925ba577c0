// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The daemon: daemonizing (the parent) and the event loop (the child, or
 * the process itself with `-f`).
 *
 * **Daemonizing.** Deno has no `fork()` and cannot hand arbitrary fds to a
 * child, so instead of wireguard-go's "parent creates the TUN and the socket,
 * passes fds 3 and 4, exits at once", the parent re-executes itself
 * (`Deno.execPath()` with `run <flags> <main module>` for a script or bundle,
 * or just the binary when compiled) with the same arguments plus
 * `WG_PROCESS_FOREGROUND=1` and a private {@link NOTIFY_ENV}, detached (a new
 * session, so a terminal hangup cannot reach it), stdin /dev/null and stdout
 * and stderr piped. The child creates the TUN and the UAPI socket itself and
 * writes `READY` on stdout once the interface exists and the socket is
 * listening; the parent exits 0 only then, so wg-quick's `wg setconf` right
 * after never races the daemon (the same guarantee wireguard-go gets from
 * creating both before forking). If the child fails first, the parent relays
 * what it printed (wireguard-go's "Failed to create TUN device: …",
 * "UAPI listen error: …") and exits 1.
 *
 * **Where the child's logs go.** Right after `READY` the child points fds 0,
 * 1 and 2 away from the parent's pipes (dup2), so it holds nothing of the
 * caller's and `$(gotatun wg0)` or `gotatun wg0 | cat` return at once.
 * wireguard-go gives the child the caller's stdout/stderr when `LOG_LEVEL` is
 * set and not `silent`; doing that with a pipe is exactly what makes a
 * command substitution hang. We keep the useful part: with such a
 * `LOG_LEVEL`, if the caller's stdout/stderr is a terminal or a regular file
 * (never a pipe or socket), the child reopens that same path (O_APPEND,
 * O_NOCTTY) and keeps logging there; anything else gets /dev/null.
 *
 * **The loop.** One {@link Poller} (epoll) over the TUN fd and the UDP
 * sockets, with synchronous drains; a 1 s tick follows the link's up/down
 * state and MTU (wireguard-go's netlink and "hack" listeners). It ends, with
 * exit code 0, on SIGINT/SIGTERM, when the link is deleted (`ip link del`,
 * what wg-quick down does on Linux), or when the socket file is removed
 * (what wg-quick down does on macOS/FreeBSD): the socket is unlinked and the
 * keys wiped before exiting. SIGHUP is ignored.
 */
import type { DaemonOptions } from "./args.ts";
import { DENO_RUN_FLAGS, VERSION } from "./version.ts";
import { createLogger, type Logger } from "../src/log.ts";
import { systemRng } from "../src/clock.ts";
import { warmUp } from "../src/warmup.ts";
import { closeQuietly, cstr, libc, O_CLOEXEC, O_RDWR } from "../src/sys/libc.ts";
import { Poller } from "../src/sys/poller.ts";
import { LinuxTun } from "../src/tun/linux.ts";
import { LinuxBind } from "../src/conn/udp.ts";
import { Device } from "../src/device.ts";
import { type UapiHandler, UapiServer } from "../uapi/server.ts";
import { deviceHandler } from "../uapi/apply.ts";
import { useBestCryptoBackend } from "../src/crypto/select.ts";
import { type CryptoPool, InlineCryptoPool } from "../src/crypto_pool.ts";
import { WorkerCryptoPool } from "../src/crypto_workers.ts";
import { METRICS_ALLOW_REMOTE_ENV, METRICS_ENV, startMetrics } from "./metrics.ts";

/** Private: set by the parent; the child then writes {@link READY_LINE} on stdout when ready. */
export const NOTIFY_ENV = "GOTATUN_NOTIFY_READY";
/** Private: paths the child should keep logging to (stdout, stderr), see the module doc. */
export const LOG_STDOUT_ENV = "GOTATUN_LOG_STDOUT";
export const LOG_STDERR_ENV = "GOTATUN_LOG_STDERR";
/** What the child writes on its stdout pipe once the TUN exists and the socket listens. */
export const READY_LINE = "READY";
/** How long the parent waits for the child to become ready. */
const READY_TIMEOUT_MS = 30_000;
/** Packets per drain call before yielding to the other fds (level-triggered epoll comes back). */
const DRAIN_BATCH = 256;
/** Period of the link state / MTU check. */
const TICK_MS = 1000;

const O_WRONLY = 1;
const O_NOCTTY = 0o400;
const O_APPEND = 0o2000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `prefix: message`, unless the message already starts with `prefix`. */
function prefixed(prefix: string, err: unknown): string {
  const m = message(err);
  return m.startsWith(prefix) ? m : `${prefix}: ${m}`;
}

/** Writes all of `data` to stdout or stderr synchronously; never throws (EPIPE after the parent left). */
function writeFully(target: "stdout" | "stderr", data: Uint8Array): void {
  const stream = target === "stdout" ? Deno.stdout : Deno.stderr;
  try {
    let off = 0;
    while (off < data.length) off += stream.writeSync(data.subarray(off));
  } catch {
    // Broken pipe or closed: logging must never take the daemon down.
  }
}

const encoder = new TextEncoder();

/** writeStdout() is the daemon's log sink (wireguard-go logs to stdout). */
export function writeStdout(line: string): void {
  writeFully("stdout", encoder.encode(line));
}

/** writeStderr() writes to stderr (the warning banner, usage problems). */
export function writeStderr(text: string): void {
  writeFully("stderr", encoder.encode(text));
}

/** fileUrlToPath() turns a `file:` URL into a path (other URLs are returned as is). */
function fileUrlToPath(url: string): string {
  return url.startsWith("file:") ? decodeURIComponent(new URL(url).pathname) : url;
}

/**
 * selfCommand() is how to run this program again: the compiled binary, or
 * `deno run <flags> <main module>` for a bundle (`--no-config`, like its
 * shebang line) or for the sources (with the repository's deno.json, which
 * maps the npm imports).
 */
export function selfCommand(): { cmd: string; args: string[] } {
  if (Deno.build.standalone) return { cmd: Deno.execPath(), args: [] };
  const fromSources = import.meta.url.endsWith("/cli/daemon.ts");
  // From the sources, always cli/main.ts (the main module may be a test or
  // another program embedding us); in a bundle, the bundle itself.
  const main = fileUrlToPath(
    fromSources ? new URL("./main.ts", import.meta.url).href : Deno.mainModule,
  );
  const config = fromSources
    ? ["--config", fileUrlToPath(new URL("../deno.json", import.meta.url).href)]
    : ["--no-config"];
  return { cmd: Deno.execPath(), args: ["run", ...DENO_RUN_FLAGS, ...config, main] };
}

/**
 * readFdLink() is readlink(2) of /proc/self/fd/N through FFI: Deno refuses
 * `Deno.readLinkSync` on /proc/self/fd without --allow-all.
 */
function readFdLink(fd: number): string | null {
  const lib = Deno.dlopen("libc.so.6", {
    readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  });
  try {
    const buf = new Uint8Array(4096);
    const n = Number(lib.symbols.readlink(cstr(`/proc/self/fd/${fd}`), buf, BigInt(buf.length)));
    return n > 0 && n < buf.length ? new TextDecoder().decode(buf.subarray(0, n)) : null;
  } finally {
    lib.close();
  }
}

/**
 * logTarget() is the path behind our fd 1 or 2 if the daemon may reopen it
 * to keep logging: a terminal or a regular file, never a pipe or a socket.
 */
function logTarget(fd: 1 | 2): string | null {
  try {
    const target = readFdLink(fd);
    // "pipe:[…]", "socket:[…]", "anon_inode:…", or "/path (deleted)" (stat fails).
    if (target === null || !target.startsWith("/")) return null;
    const st = Deno.statSync(target);
    return st.isFile || st.isCharDevice ? target : null;
  } catch {
    return null;
  }
}

/**
 * daemonize() is the parent: starts the daemon child and waits until it
 * reports READY (returns 0) or fails (relays its output, returns 1).
 * `argv` is our own argument list, passed on unchanged as wireguard-go does.
 */
export async function daemonize(
  opts: DaemonOptions,
  argv: readonly string[],
  log: Logger,
): Promise<number> {
  const env: Record<string, string> = { WG_PROCESS_FOREGROUND: "1", [NOTIFY_ENV]: "1" };
  if (opts.logToCaller) {
    const out = logTarget(1);
    const err = logTarget(2);
    if (out !== null) env[LOG_STDOUT_ENV] = out;
    if (err !== null) env[LOG_STDERR_ENV] = err;
  }
  const self = selfCommand();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(self.cmd, {
      args: [...self.args, ...argv],
      env,
      detached: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (err) {
    log.error(`Failed to daemonize: ${message(err)}`);
    return 1;
  }

  let stderrText = "";
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of child.stderr) stderrText += dec.decode(chunk, { stream: true });
    } catch {
      // cancelled
    }
  })();

  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let pending = "";
  let relay = "";
  let ready = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS);
  });
  let timedOut = false;
  try {
    outer: for (;;) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r === "timeout") {
        timedOut = true;
        break;
      }
      if (r.done) break;
      pending += dec.decode(r.value, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line === READY_LINE) {
          ready = true;
          break outer;
        }
        relay += line + "\n";
      }
    }
  } finally {
    clearTimeout(timer);
  }

  if (ready) {
    if (relay !== "") writeStdout(relay);
    if (stderrText !== "") writeStderr(stderrText);
    child.unref();
    return 0;
  }

  // The child failed (or hung): show what it said, make sure it is gone.
  if (timedOut) {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }
  let t2: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    child.status,
    new Promise<null>((r) => (t2 = setTimeout(() => r(null), 5000))),
  ]);
  clearTimeout(t2);
  await Promise.race([stderrDone, new Promise((r) => setTimeout(r, 200))]);
  relay += pending;
  if (relay !== "") writeStdout(relay.endsWith("\n") ? relay : relay + "\n");
  if (stderrText !== "") writeStderr(stderrText);
  if (timedOut) {
    log.error(`Failed to daemonize: not ready after ${READY_TIMEOUT_MS / 1000} s`);
  } else if (relay === "" && stderrText === "" && status !== null && status.code !== 1) {
    log.error(
      `Failed to daemonize: the daemon exited with code ${status.code} before it was ready`,
    );
  }
  reader.cancel().catch(() => {});
  return 1;
}

/**
 * redirectStdio() points fds 0, 1 and 2 of this process away from whatever
 * the parent handed us: fd 0 and, by default, 1 and 2 to /dev/null; 1 and 2
 * to the caller's terminal or file when the parent passed one (see module doc).
 */
function redirectStdio(outPath: string | undefined, errPath: string | undefined): void {
  const c = libc();
  function openOr(path: string | undefined, fallback: number): number {
    if (path === undefined) return fallback;
    const fd = c.open(cstr(path), O_WRONLY | O_APPEND | O_NOCTTY | O_CLOEXEC, 0);
    return fd >= 0 ? fd : fallback;
  }
  const devnull = c.open(cstr("/dev/null"), O_RDWR | O_NOCTTY | O_CLOEXEC, 0);
  if (devnull < 0) return;
  const out = openOr(outPath, devnull);
  const err = errPath !== undefined && errPath === outPath ? out : openOr(errPath, devnull);
  c.dup2(devnull, 0);
  c.dup2(out, 1);
  c.dup2(err, 2);
  for (const fd of new Set([devnull, out, err])) if (fd > 2) closeQuietly(fd);
}

/** Reads and removes a private variable so that nothing we spawn inherits it. */
function takeEnv(name: string): string | undefined {
  try {
    const v = Deno.env.get(name);
    if (v !== undefined) Deno.env.delete(name);
    return v;
  } catch {
    return undefined;
  }
}

/**
 * runForeground() runs the daemon in this process until it is told to stop.
 * Returns 1 on a setup failure (after logging wireguard-go's message); on a
 * normal shutdown it exits the process with 0 itself (pending FFI waits would
 * otherwise keep the event loop alive, deno-platform.md §5).
 */
export async function runForeground(opts: DaemonOptions): Promise<number> {
  const notify = takeEnv(NOTIFY_ENV) === "1";
  const logOut = takeEnv(LOG_STDOUT_ENV);
  const logErr = takeEnv(LOG_STDERR_ENV);

  let log = createLogger(opts.logLevel, opts.iface, writeStdout);
  log.verbose(`Starting gotatun version ${VERSION}`);

  // Open the TUN device (or use the supplied fd).
  if (opts.envError !== null) {
    const what = opts.envError.variable === "WG_TUN_FD"
      ? "Failed to create TUN device"
      : "UAPI listen error";
    log.error(`${what}: invalid ${opts.envError.variable} "${opts.envError.value}"`);
    return 1;
  }
  let tun: LinuxTun;
  try {
    // TUN offloads (TSO/USO in, GRO out) as wireguard-go ≥ 0.0.20230223 uses
    // them; GOTATUN_OFFLOAD=0 turns them off for kernels that misbehave.
    const offload = envValue("GOTATUN_OFFLOAD") !== "0";
    tun = opts.tunFd !== null
      ? LinuxTun.fromFd(opts.tunFd)
      : LinuxTun.create(opts.iface, { offload });
  } catch (err) {
    log.error(prefixed("Failed to create TUN device", err));
    return 1;
  }
  const iface = tun.name;
  if (iface !== opts.iface) log = createLogger(opts.logLevel, iface, writeStdout);

  let poller: Poller;
  let bind: LinuxBind;
  let device: Device;
  try {
    poller = new Poller({
      onError: (err) => log.error(`Event loop: ${message(err)}`),
      // How long to look for more packets before sleeping.
      spinUs: envDuration("GOTATUN_SPIN_US", DEFAULT_SPIN_US, 1000),
      // How long after a packet to keep waiting on the main thread.
      holdMs: envDuration("GOTATUN_HOLD_MS", DEFAULT_HOLD_MS, 60_000),
    });
    bind = new LinuxBind();
    // GOTATUN_CRYPTO=native|noble|auto (default auto: OpenSSL's libcrypto when it loads).
    const crypto = useBestCryptoBackend(envValue("GOTATUN_CRYPTO"));
    log.verbose(crypto.reason);
    warmUpCore(log);
    const cryptoPool = makeCryptoPool(envValue("GOTATUN_WORKERS"), envValue("GOTATUN_CRYPTO"));
    log.verbose(
      cryptoPool instanceof WorkerCryptoPool
        ? `crypto: ${envValue("GOTATUN_WORKERS")} Worker(s) share each batch with the main thread`
        : "crypto: on the main thread (GOTATUN_WORKERS=0)",
    );
    device = new Device({ tun, bind, logger: log, name: iface, autoFlush: false, cryptoPool });
  } catch (err) {
    log.error(`Failed to start device: ${message(err)}`);
    tun.close();
    return 1;
  }
  log.verbose("Device started");

  // ---- UDP fds follow the bind (it reopens on up/down and listen_port changes).
  const udpFds = new Set<number>();
  function onUdp(): void {
    bind.drain(DRAIN_BATCH);
    // Decrypted packets (TUN writes) and handshake replies (UDP) go out now.
    device.flush();
  }
  /** Re-registers every UDP fd: a reopened socket may reuse a closed one's number. */
  function resyncUdp(): void {
    for (const fd of udpFds) poller.remove(fd);
    udpFds.clear();
    for (const fd of bind.fds()) {
      poller.add(fd, onUdp);
      udpFds.add(fd);
    }
  }
  /** Cheap check for the tick: register fds we have not seen. */
  function syncUdp(): void {
    const now = bind.fds();
    if (now.length === udpFds.size && now.every((fd) => udpFds.has(fd))) return;
    resyncUdp();
  }

  // ---- Shutdown, from whichever cause comes first.
  let stopping = false;
  let resolveStop!: (why: string) => void;
  const stopped = new Promise<string>((r) => (resolveStop = r));
  function stop(why: string): void {
    if (stopping) return;
    stopping = true;
    resolveStop(why);
    poller.stop();
  }

  // ---- Link state and MTU (wireguard-go's netlink and hack listeners).
  // The device logs its own transitions and bind errors. A failed up() (port
  // in use) is retried on the next down→up transition, or after a UAPI set,
  // which may have fixed the port.
  let linkState: "up" | "down" | "gone" | "unknown" = "unknown";
  function tryUp(): void {
    try {
      device.up();
    } catch {
      // Logged by the device ("Unable to update bind: …"); stays down.
    }
    resyncUdp();
  }
  function followLink(): void {
    const state = tun.linkState();
    if (state === "gone") {
      stop("interface deleted");
      return;
    }
    const previous = linkState;
    linkState = state;
    if (state === "up" && previous !== "up" && !device.isUp) {
      tryUp();
    } else if (state === "down" && device.isUp) {
      device.down();
      resyncUdp();
    }
    if (tun.refreshMtu()) device.onMtuChange();
  }
  function afterSet(): void {
    if (stopping) return;
    if (linkState === "up" && !device.isUp) tryUp();
    else resyncUdp();
  }

  // ---- TUN: packets from the kernel go to the device; −1 means the link was deleted.
  function onTunPacket(pkt: Uint8Array): void {
    device.handleTunPacket(pkt);
  }
  function onTun(): void {
    // Packets only flow while the link is up: notice it before the next tick.
    if (linkState !== "up") followLink();
    const n = tun.drain(onTunPacket, DRAIN_BATCH);
    device.flush();
    if (n < 0) {
      poller.remove(tun.fd);
      stop("interface deleted");
    }
  }

  // ---- The UAPI socket.
  let uapi: UapiServer;
  try {
    const uapiOptions = {
      iface,
      logger: log,
      handle: resyncingHandler(deviceHandler(device), afterSet),
    };
    uapi = opts.uapiFd !== null
      ? await UapiServer.fromFd(opts.uapiFd, uapiOptions)
      : await UapiServer.listen(uapiOptions);
  } catch (err) {
    log.error(prefixed("UAPI listen error", err));
    device.close();
    tun.close();
    poller.close();
    return 1;
  }
  log.verbose("UAPI listener started");
  // Prometheus metrics, off unless GOTATUN_METRICS is set (cli/metrics.ts).
  const metricsAddr = envValue(METRICS_ENV);
  const metrics = metricsAddr
    ? startMetrics(device, {
      address: metricsAddr,
      allowRemote: envValue(METRICS_ALLOW_REMOTE_ENV) === "1",
      logger: log,
    })
    : null;

  const onSignal = () => stop("signal");
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  // Deno's default for SIGHUP is to die; wireguard-go's is too, but a daemon
  // that lost its terminal should live on, and we are in our own session anyway.
  Deno.addSignalListener("SIGHUP", () => {});
  uapi.closed.then(() => stop("socket removed"), () => stop("socket removed"));

  poller.add(tun.fd, onTun);
  followLink();
  resyncUdp();
  const tick = setInterval(() => {
    if (!stopping) {
      followLink();
      syncUdp();
    }
  }, TICK_MS);

  if (notify) {
    writeStdout(`${READY_LINE}\n`);
    redirectStdio(logOut, logErr);
  }

  const loop = poller.run().catch((err) => {
    log.error(`Event loop failed: ${message(err)}`);
    stop("event loop failed");
  });
  const why = await stopped;
  clearInterval(tick);
  log.verbose(`Shutting down (${why})`);
  await metrics?.close();
  try {
    uapi.close();
  } catch (err) {
    log.error(`Closing UAPI: ${message(err)}`);
  }
  // Deno unlinks a closed unix listener's file asynchronously, after we may
  // have exited: unlink it now, so `wg show interfaces` forgets us at once.
  // Not when it was removed already: the path may belong to a newer instance.
  if (why !== "socket removed") {
    try {
      Deno.removeSync(uapi.path);
    } catch {
      // already gone
    }
  }
  try {
    device.close();
  } catch (err) {
    log.error(`Closing device: ${message(err)}`);
  }
  poller.close();
  await Promise.race([loop, new Promise((r) => setTimeout(r, 100))]);
  tun.close();
  Deno.exit(0);
}

/**
 * resyncingHandler() wraps the device's UAPI handler so that `afterSet` runs
 * once a `set` is over, or when one of its lines failed, and after the lines
 * that may reopen the sockets: the poller must then watch the new fds.
 */
function resyncingHandler(inner: UapiHandler, afterSet: () => void): UapiHandler {
  return {
    get() {
      return inner.get();
    },
    set() {
      const session = inner.set();
      return {
        line(key, value) {
          try {
            session.line(key, value);
          } catch (err) {
            afterSet();
            throw err;
          }
          if (key === "listen_port" || key === "fwmark") afterSet();
        },
        end() {
          try {
            session.end();
          } finally {
            afterSet();
          }
        },
      };
    },
  };
}

/** An environment variable, or undefined when unset or unreadable. */
function envValue(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** A duration from the environment, at most `max`; `fallback` when unset or not a number ≥ 0. */
function envDuration(name: string, fallback: number, max: number): number {
  const v = Number(envValue(name) ?? fallback);
  return Number.isFinite(v) && v >= 0 ? Math.min(v, max) : fallback;
}

/**
 * Compiles the protocol's code paths before the first real handshake (see
 * src/warmup.ts). Never fatal: the tunnel works without it, only its first
 * packets are slower.
 */
function warmUpCore(log: Logger): void {
  const start = performance.now();
  try {
    const n = warmUp(systemRng);
    log.verbose(
      `Warm-up: ${n} packets through a throwaway in-memory tunnel in ${
        (performance.now() - start).toFixed(1)
      } ms`,
    );
  } catch (err) {
    log.error(`Warm-up failed (the tunnel is not affected): ${message(err)}`);
  }
}

/**
 * The crypto pool for GOTATUN_WORKERS: a number of Workers that share each
 * batch with the main thread, or 0 (the default) for the main thread alone.
 */
function makeCryptoPool(workers: string | undefined, cryptoEnv: string | undefined): CryptoPool {
  const n = workers === undefined || workers === "" ? 0 : Number(workers);
  if (!Number.isInteger(n) || n < 0 || n > 64) {
    throw new Error(`GOTATUN_WORKERS must be a whole number from 0 to 64, got "${workers}"`);
  }
  if (n === 0) return new InlineCryptoPool();
  return new WorkerCryptoPool({ workers: n, entry: Deno.mainModule, cryptoEnv });
}

/** Default busy-poll window after activity, in µs (see Poller spinUs). */
const DEFAULT_SPIN_US = 50;
/** Default window after activity for waiting on the main thread, in ms (see Poller holdMs). */
const DEFAULT_HOLD_MS = 1000;
