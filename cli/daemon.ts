// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The daemon: daemonizing (the parent), and the daemon's main thread (the
 * child, or the process itself with `-f`), which starts the data-plane Worker
 * and serves the UAPI socket, the metrics and the signals.
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
 * O_NOCTTY) and keeps logging there; anything else gets /dev/null. The
 * reopened file has an offset of its own, so a writer still using the
 * caller's open file (the parent relaying, `gotatun up` printing its `[#]`
 * lines, the shell) would write over the child's lines at its stale offset
 * (`cmd > log`): the parent therefore switches that open file to O_APPEND
 * too, so every writer appends, and relays the child's lines as they come.
 *
 * **The loop** runs in a data-plane Worker (cli/daemon_worker.ts,
 * src/dataplane.ts): a synchronous epoll over the TUN fd and the UDP
 * sockets; a 1 s timer follows the link's up/down state and MTU
 * (wireguard-go's netlink and "hack" listeners). The daemon ends, with
 * exit code 0, on SIGINT/SIGTERM, when the link is deleted (`ip link del`,
 * what wg-quick down does on Linux), or when the socket file is removed
 * (what wg-quick down does on macOS/FreeBSD): the socket is unlinked and the
 * keys wiped before exiting. SIGHUP is ignored.
 */
import type { DaemonOptions } from "./args.ts";
import { DENO_RUN_FLAGS, VERSION } from "./version.ts";
import { createLogger, type Logger } from "../src/log.ts";
import {
  closeQuietly,
  cstr,
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  errno,
  F_GETFL,
  F_SETFL,
  libc,
  O_CLOEXEC,
  O_RDWR,
  strerror,
} from "../src/sys/libc.ts";
import { ControlClient, createControlBuffer } from "../src/control.ts";
import { prefixed } from "../src/dataplane.ts";
import { UapiServer } from "../uapi/server.ts";
import { RemoteUapiSession } from "../uapi/remote.ts";
import {
  METRICS_ALLOW_REMOTE_ENV,
  METRICS_ENV,
  type MetricsExtra,
  startMetrics,
} from "./metrics.ts";
import {
  DATAPLANE_KIND,
  type DataplaneEvent,
  type DataplaneInit,
  OP_METRICS,
  OP_STOP,
} from "./daemon_worker.ts";
import { writeStderr, writeStdout } from "./output.ts";

export { writeStderr, writeStdout };

/** Private: set by the parent; the child then writes {@link READY_LINE} on stdout when ready. */
export const NOTIFY_ENV = "GOTATUN_NOTIFY_READY";
/** Private: paths the child should keep logging to (stdout, stderr), see the module doc. */
export const LOG_STDOUT_ENV = "GOTATUN_LOG_STDOUT";
export const LOG_STDERR_ENV = "GOTATUN_LOG_STDERR";
/** What the child writes on its stdout pipe once the TUN exists and the socket listens. */
export const READY_LINE = "READY";
/** How long the parent waits for the child to become ready. */
const READY_TIMEOUT_MS = 30_000;

const O_WRONLY = 1;
const O_NOCTTY = 0o400;
const O_APPEND = 0o2000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True when this runs from the repository's sources rather than a bundle or a binary. */
const FROM_SOURCES = import.meta.url.endsWith("/cli/daemon.ts");

/**
 * entryModule() is this program's entry module, which our re-executed child
 * and our Workers run: cli/main.ts from the sources (the main module may be a
 * test or another program embedding us), the bundle or binary itself otherwise.
 */
function entryModule(): string {
  return FROM_SOURCES ? new URL("./main.ts", import.meta.url).href : Deno.mainModule;
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
  const main = fileUrlToPath(entryModule());
  const config = FROM_SOURCES
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
 * appendOnly() sets O_APPEND on the open file behind our `fd` (a regular
 * file the caller redirected us to), for every process sharing it; see the
 * module doc. Never fatal.
 */
function appendOnly(fd: 1 | 2): void {
  try {
    const c = libc();
    const flags = c.fcntl(fd, F_GETFL, 0);
    if (flags >= 0 && (flags & O_APPEND) === 0) c.fcntl(fd, F_SETFL, flags | O_APPEND);
  } catch {
    // Without FFI the child's lines may overwrite ours; nothing else breaks.
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
    if (out !== null) appendOnly(1);
    if (err !== null) appendOnly(2);
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

  // What the child prints before READY is passed on as it comes (see the module doc).
  let saidSomething = false;
  const stderrDone = (async () => {
    const dec = new TextDecoder();
    try {
      for await (const chunk of child.stderr) {
        const text = dec.decode(chunk, { stream: true });
        if (text !== "") {
          saidSomething = true;
          writeStderr(text);
        }
      }
    } catch {
      // cancelled
    }
  })();

  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let pending = "";
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
        saidSomething = true;
        writeStdout(line + "\n");
      }
    }
  } finally {
    clearTimeout(timer);
  }

  if (ready) {
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
  if (pending !== "") {
    saidSomething = true;
    writeStdout(pending + "\n");
  }
  if (timedOut) {
    log.error(`Failed to daemonize: not ready after ${READY_TIMEOUT_MS / 1000} s`);
  } else if (!saidSomething && status !== null && status.code !== 1) {
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
 * Returns 1 on a setup failure (after wireguard-go's message is logged); on a
 * normal shutdown it exits the process with 0 itself (a Worker blocked in
 * `epoll_wait` would otherwise keep the process alive).
 *
 * The data path (TUN, UDP, device, timers) runs in a Worker of its own (see
 * cli/daemon_worker.ts); this thread serves the UAPI socket, the metrics and
 * the signals, and reaches the device only through the control channel.
 */
export async function runForeground(opts: DaemonOptions): Promise<number> {
  const notify = takeEnv(NOTIFY_ENV) === "1";
  const logOut = takeEnv(LOG_STDOUT_ENV);
  const logErr = takeEnv(LOG_STDERR_ENV);

  let log = createLogger(opts.logLevel, opts.iface, writeStdout);
  log.verbose(`Starting gotatun version ${VERSION}`);

  if (opts.envError !== null) {
    const what = opts.envError.variable === "WG_TUN_FD"
      ? "Failed to create TUN device"
      : "UAPI listen error";
    log.error(`${what}: invalid ${opts.envError.variable} "${opts.envError.value}"`);
    return 1;
  }

  const plane = await startDataplane(opts);
  if (plane === null) return 1;
  const iface = plane.iface;
  if (iface !== opts.iface) log = createLogger(opts.logLevel, iface, writeStdout);

  // ---- Shutdown, from whichever cause comes first.
  let stopping = false;
  let resolveStop!: (why: string) => void;
  const stopped = new Promise<string>((r) => (resolveStop = r));
  function stop(why: string): void {
    if (stopping) return;
    stopping = true;
    resolveStop(why);
  }
  plane.onStopped = stop;

  // ---- The UAPI socket: each connection's protocol runs next to the device.
  let uapi: UapiServer;
  try {
    const uapiOptions = {
      iface,
      logger: log,
      open: (write: (text: string) => void) => new RemoteUapiSession(plane.client, write),
    };
    uapi = opts.uapiFd !== null
      ? await UapiServer.fromFd(opts.uapiFd, uapiOptions)
      : await UapiServer.listen(uapiOptions);
  } catch (err) {
    log.error(prefixed("UAPI listen error", err));
    plane.stop();
    return 1;
  }
  log.verbose("UAPI listener started");
  // Prometheus metrics, off unless GOTATUN_METRICS is set (cli/metrics.ts).
  const metricsAddr = envValue(METRICS_ENV);
  const metrics = metricsAddr
    ? startMetrics((extra) => plane.metrics(extra), {
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

  if (notify) {
    writeStdout(`${READY_LINE}\n`);
    redirectStdio(logOut, logErr);
  }

  const why = await stopped;
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
  // The device is closed (keys wiped) before this returns.
  plane.stop();
  Deno.exit(0);
}

/** The main thread's handle on the data-plane Worker. */
interface DataplaneHandle {
  /** The interface name (the kernel's, for WG_TUN_FD). */
  iface: string;
  client: ControlClient;
  /** Called once if the data plane stops on its own (link deleted, or it failed). */
  onStopped: (why: string) => void;
  /** The metrics text, rendered next to the device. */
  metrics(extra: MetricsExtra): string;
  /** Closes the device (keys wiped) and ends the Worker's loop; idempotent. */
  stop(): void;
}

/**
 * Starts the data-plane Worker and waits until its interface exists (the
 * handle) or it failed (null, after it logged wireguard-go's message).
 */
async function startDataplane(opts: DaemonOptions): Promise<DataplaneHandle | null> {
  const log = createLogger(opts.logLevel, opts.iface, writeStdout);
  // The eventfd that wakes the Worker's loop is ours: it stays open until
  // the process exits, so its number is never reused under a late request.
  let wakeFd: number;
  try {
    wakeFd = libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd < 0) throw new Error(`eventfd: ${strerror(errno())}`);
  } catch (err) {
    // Without FFI (--deny-ffi) nothing of the data path can work.
    log.error(prefixed("Failed to create TUN device", err));
    return null;
  }
  const control = createControlBuffer();
  const entry = entryModule();
  const worker = new Worker(entry, { type: "module" });
  let settle!: (iface: string | null) => void;
  const started = new Promise<string | null>((r) => (settle = r));
  let running = false;
  const handle: DataplaneHandle = {
    iface: opts.iface,
    client: new ControlClient(control, wakeFd),
    onStopped: () => {},
    metrics(extra) {
      const a = this.client.call(OP_METRICS, 0, new TextEncoder().encode(JSON.stringify(extra)));
      return new TextDecoder().decode(a.data);
    },
    stop() {
      if (!running) return;
      running = false;
      try {
        this.client.call(OP_STOP);
      } catch (err) {
        writeStdout(`Stopping the data plane: ${message(err)}\n`);
      }
    },
  };
  worker.onmessage = (e: MessageEvent<DataplaneEvent>) => {
    const ev = e.data;
    if (ev.kind === "ready") {
      running = true;
      settle(ev.iface);
    } else if (ev.kind === "failed") {
      settle(null);
    } else if (ev.kind === "stopped") {
      running = false;
      handle.onStopped(ev.why);
    }
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    log.error(`Data plane failed: ${e.message}`);
    running = false;
    settle(null);
    handle.onStopped("data plane failed");
  };
  const init: DataplaneInit = {
    kind: DATAPLANE_KIND,
    control,
    wakeFd,
    iface: opts.iface,
    tunFd: opts.tunFd,
    // TUN offloads (TSO/USO in, GRO out) as wireguard-go ≥ 0.0.20231211 uses
    // them; GOTATUN_OFFLOAD=0 turns them off for kernels that misbehave.
    offload: envValue("GOTATUN_OFFLOAD") !== "0",
    logLevel: opts.logLevel,
    cryptoEnv: envValue("GOTATUN_CRYPTO"),
    workers: envValue("GOTATUN_WORKERS"),
    handshakeWorkers: envValue("GOTATUN_HANDSHAKE_WORKERS"),
    workerEntry: entry,
  };
  worker.postMessage(init);
  const iface = await started;
  if (iface === null) {
    worker.terminate();
    return null;
  }
  handle.iface = iface;
  return handle;
}

/** An environment variable, or undefined when unset or unreadable. */
function envValue(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}
