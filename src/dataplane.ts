// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link Dataplane}: one WireGuard interface on Linux, run on the calling
 * thread: the TUN, the UDP sockets, the {@link Device} and its timers, all
 * driven by one {@link EventLoop} (a synchronous `epoll_wait`). The daemon
 * runs it in a Worker of its own, so packets never wait for Deno's event
 * loop, and the main thread keeps the UAPI socket, signals and metrics,
 * reaching the device only through requests the loop answers between
 * batches (see `src/control.ts`).
 *
 * Ownership: everything here (device, peers, keys, timers, fds) belongs to
 * the thread that runs {@link Dataplane.run}; no other thread touches it.
 *
 * Per wake-up: the ready fds are drained in batches (TUN reads are routed
 * and queued for sealing, UDP datagrams for opening or the handshake queue),
 * then the device flushes (crypto in one batch, then TUN writes and UDP
 * sends), then due timers run. A netlink socket (src/sys/netlink.ts) tells
 * the loop when a link changes, and the link's up/down state and MTU are
 * then read again, as wireguard-go's netlink listener does (where no netlink
 * socket can be opened, a 1 s timer looks instead); a deleted link (a failed
 * TUN read) ends the loop. Idle, the loop sleeps until its next timer.
 */
import type { Logger } from "./log.ts";
import { systemRng } from "./clock.ts";
import { warmUp, warmUpHandshakes } from "./warmup.ts";
import { EventLoop } from "./event_loop.ts";
import { LinuxTun } from "./tun/linux.ts";
import { LinkEvents } from "./sys/netlink.ts";
import { LinuxBind } from "./conn/udp.ts";
import { Device } from "./device.ts";
import { useBestCryptoBackend } from "./crypto/select.ts";
import { type CryptoPool, InlineCryptoPool } from "./crypto_pool.ts";
import { WorkerCryptoPool } from "./crypto_workers.ts";
import { HandshakeWorkers } from "./handshake_workers.ts";

/** Packets per drain call before the other fds get a turn (level-triggered epoll comes back). */
const DRAIN_BATCH = 256;
/** Period of the link state / MTU check when no netlink socket could be had. */
const TICK_MS = 1000;

/** Options of {@link Dataplane.open}. */
export interface DataplaneOptions {
  /** Interface to create (ignored with `tunFd`). */
  iface: string;
  /** An open TUN fd to adopt (`WG_TUN_FD`), or null to create `iface`. */
  tunFd: number | null;
  /** TUN offloads (IFF_VNET_HDR: TSO/USO split on read, GRO on write). */
  offload: boolean;
  /** The logger for an interface name (known once the TUN exists). */
  logger: (iface: string) => Logger;
  /** An eventfd another thread writes to in order to wake the loop (see EventLoop). */
  wakeFd?: number;
  /** GOTATUN_CRYPTO: `native`, `noble` or `auto` (default). */
  cryptoEnv?: string;
  /** GOTATUN_WORKERS: crypto Workers sharing each batch (default 0). */
  workers?: string;
  /** Module the crypto Workers run (it must call runCryptoWorker() in a Worker). */
  workerEntry?: string;
  /**
   * GOTATUN_HANDSHAKE_WORKERS: Workers that do the DH work of answering
   * initiations once handshakes queue up (default 1 with two or more CPUs,
   * else 0). They run `workerEntry`, which must call runHandshakeWorker()
   * for a HandshakeWorkerInit message.
   */
  handshakeWorkers?: string;
}

/** What ended {@link Dataplane.run}. */
export type StopReason = "interface deleted" | "stopped";

/** One interface's data path on this thread; see the module doc. */
export class Dataplane {
  readonly loop: EventLoop;
  readonly tun: LinuxTun;
  readonly bind: LinuxBind;
  readonly device: Device;
  #log: Logger;
  #udpFds = new Set<number>();
  #linkState: "up" | "down" | "gone" | "unknown" = "unknown";
  #linkEvents: LinkEvents | null = null;
  #stopReason: StopReason = "stopped";
  #closed = false;
  #handshakeWorkers: HandshakeWorkers | null;

  private constructor(
    loop: EventLoop,
    tun: LinuxTun,
    bind: LinuxBind,
    device: Device,
    log: Logger,
    handshakeWorkers: HandshakeWorkers | null,
  ) {
    this.loop = loop;
    this.tun = tun;
    this.bind = bind;
    this.device = device;
    this.#log = log;
    this.#handshakeWorkers = handshakeWorkers;
  }

  /**
   * Creates the TUN (or adopts `tunFd`), the sockets and the device. Throws
   * an Error whose message is wireguard-go's ("Failed to create TUN device:
   * …", "Failed to start device: …"), after releasing what it had made.
   */
  static open(opts: DataplaneOptions): Dataplane {
    let tun: LinuxTun;
    try {
      tun = opts.tunFd !== null
        ? LinuxTun.fromFd(opts.tunFd)
        : LinuxTun.create(opts.iface, { offload: opts.offload });
    } catch (err) {
      throw new Error(prefixed("Failed to create TUN device", err));
    }
    const log = opts.logger(tun.name);
    let loop: EventLoop | null = null;
    try {
      loop = new EventLoop({
        onError: (err) => log.error(`Event loop: ${message(err)}`),
        wakeFd: opts.wakeFd,
      });
      const bind = new LinuxBind();
      const crypto = useBestCryptoBackend(opts.cryptoEnv);
      log.verbose(crypto.reason);
      const cryptoPool = makeCryptoPool(opts);
      log.verbose(
        cryptoPool instanceof WorkerCryptoPool
          ? `crypto: ${opts.workers} Worker(s) share each batch with the data-plane thread`
          : "crypto: on the data-plane thread (GOTATUN_WORKERS=0)",
      );
      const handshakeOffload = makeHandshakeWorkers(opts, log);
      const device = new Device({
        tun,
        bind,
        logger: log,
        name: tun.name,
        autoFlush: false,
        cryptoPool,
        clock: loop,
        handshakeOffload: handshakeOffload ?? undefined,
      });
      if (handshakeOffload) loop.add(handshakeOffload.fd, () => device.collectHandshakes());
      return new Dataplane(loop, tun, bind, device, log, handshakeOffload);
    } catch (err) {
      loop?.close();
      tun.close();
      throw new Error(prefixed("Failed to start device", err));
    }
  }

  /**
   * Compiles the protocol's code paths before the first real handshake (see
   * src/warmup.ts). Call it last before {@link run}: V8 throws optimised code
   * away when a prototype its assumptions depend on changes, and the first
   * `postMessage` of a Worker does that (measured: blake2s and the noise
   * helpers were deoptimised by the Worker's "ready" message, and the first
   * handshake then took 4–5 ms instead of under 3). Never fatal: the tunnel
   * works without it, only its first packets are slower.
   */
  warmUp(): void {
    const start = performance.now();
    try {
      const n = warmUp(systemRng);
      const h = warmUpHandshakes(systemRng);
      this.#log.verbose(
        `Warm-up: ${n} packets through a throwaway in-memory tunnel and ${h} handshakes in ${
          (performance.now() - start).toFixed(1)
        } ms`,
      );
    } catch (err) {
      this.#log.error(`Warm-up failed (the tunnel is not affected): ${message(err)}`);
    }
  }

  /** The interface name (the kernel's, for an adopted fd). */
  get name(): string {
    return this.tun.name;
  }

  /**
   * Runs the loop on this thread until {@link stop} or until the link is
   * deleted; returns why. The device stays open: {@link close} it after.
   */
  run(): StopReason {
    const loop = this.loop;
    loop.add(this.tun.fd, this.#onTun);
    try {
      const events = new LinkEvents();
      this.#linkEvents = events;
      loop.add(events.fd, () => {
        if (events.drain(this.tun.ifindex)) this.#followLink();
      });
    } catch (err) {
      this.#log.verbose(`Link changes are polled every ${TICK_MS} ms (${message(err)})`);
      const tick = () => {
        if (this.#closed) return;
        this.#followLink();
        loop.after(TICK_MS, tick);
      };
      loop.after(TICK_MS, tick);
    }
    // A link deleted before the loop ran (during the warm-up, say) is found
    // here; #gone() then stops the loop, and run() returns at once.
    this.#followLink();
    this.#resyncUdp();
    loop.run();
    return this.#stopReason;
  }

  /** Ends {@link run} after the current handler (call it on the loop's thread). */
  stop(): void {
    this.loop.stop();
  }

  /**
   * Call after a UAPI `set` (or a failed line of one): the port or fwmark may
   * have reopened the sockets, and a device that could not come up (port in
   * use) may now.
   */
  afterSet(): void {
    if (this.#closed) return;
    if (this.#linkState === "up" && !this.device.isUp) this.#tryUp();
    else this.#resyncUdp();
  }

  /** Closes the device (wiping its keys), the sockets, the loop and the TUN. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.device.close();
    } catch (err) {
      this.#log.error(`Closing device: ${message(err)}`);
    }
    this.#handshakeWorkers?.close();
    this.loop.close();
    this.#linkEvents?.close();
    this.tun.close();
  }

  // ---- UDP fds follow the bind (it reopens on up/down and listen_port changes).

  /** Drains the one socket epoll reported (the other would only say EAGAIN), then flushes. */
  #onUdp(fd: number): void {
    this.bind.drain(DRAIN_BATCH, fd);
    // Decrypted packets (TUN writes) and handshake replies (UDP) go out now.
    this.device.flush();
  }

  /** Re-registers every UDP fd: a reopened socket may reuse a closed one's number. */
  #resyncUdp(): void {
    for (const fd of this.#udpFds) this.loop.remove(fd);
    this.#udpFds.clear();
    for (const fd of this.bind.fds()) {
      // One handler per socket, made here (when the sockets change), not per packet.
      this.loop.add(fd, () => this.#onUdp(fd));
      this.#udpFds.add(fd);
    }
  }

  // ---- Link state and MTU (wireguard-go's netlink and "hack" listeners). The
  // device logs its own transitions and bind errors. A failed up() (port in
  // use) is tried again on the next down→up transition, or after a UAPI set.

  #tryUp(): void {
    try {
      this.device.up();
    } catch {
      // Logged by the device ("Unable to update bind: …"); stays down.
    }
    this.#resyncUdp();
  }

  #followLink(): void {
    const state = this.tun.linkState();
    if (state === "gone") {
      this.#gone();
      return;
    }
    const previous = this.#linkState;
    this.#linkState = state;
    if (state === "up" && previous !== "up" && !this.device.isUp) {
      this.#tryUp();
    } else if (state === "down" && this.device.isUp) {
      this.device.down();
      this.#resyncUdp();
    }
    if (this.tun.refreshMtu()) this.device.onMtuChange();
  }

  #gone(): void {
    this.loop.remove(this.tun.fd);
    this.#stopReason = "interface deleted";
    this.loop.stop();
  }

  // ---- TUN: packets from the kernel go to the device; −1 means the link was deleted.

  #onTunPacket = (pkt: Uint8Array): void => {
    this.device.handleTunPacket(pkt);
  };

  #onTun = (): void => {
    // Packets only flow while the link is up: notice it even if this fd's turn
    // comes before the netlink socket's in the same round.
    if (this.#linkState !== "up") this.#followLink();
    const n = this.tun.drain(this.#onTunPacket, DRAIN_BATCH);
    this.device.flush();
    if (n < 0) this.#gone();
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `prefix: message`, unless the message already starts with `prefix`. */
export function prefixed(prefix: string, err: unknown): string {
  const m = message(err);
  return m.startsWith(prefix) ? m : `${prefix}: ${m}`;
}

/** The handshake Workers for GOTATUN_HANDSHAKE_WORKERS (not started until handshakes queue up). */
function makeHandshakeWorkers(opts: DataplaneOptions, log: Logger): HandshakeWorkers | null {
  const text = opts.handshakeWorkers;
  const n = text === undefined || text === ""
    ? (navigator.hardwareConcurrency >= 2 ? 1 : 0)
    : Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 16) {
    throw new Error(
      `GOTATUN_HANDSHAKE_WORKERS must be a whole number from 0 to 16, got "${text}"`,
    );
  }
  log.verbose(
    n === 0
      ? "handshakes: on the data-plane thread (GOTATUN_HANDSHAKE_WORKERS=0)"
      : `handshakes: ${n} Worker(s) take the DH work once initiations queue up`,
  );
  if (n === 0) return null;
  return new HandshakeWorkers({
    workers: n,
    entry: opts.workerEntry ?? Deno.mainModule,
    cryptoEnv: opts.cryptoEnv,
    onError: (err) => log.error(`Handshake Workers did not start: ${message(err)}`),
  });
}

/**
 * The crypto pool for GOTATUN_WORKERS: a number of Workers that share each
 * batch with the data-plane thread, or 0 (the default) for that thread alone.
 */
function makeCryptoPool(opts: DataplaneOptions): CryptoPool {
  const workers = opts.workers;
  const n = workers === undefined || workers === "" ? 0 : Number(workers);
  if (!Number.isInteger(n) || n < 0 || n > 64) {
    throw new Error(`GOTATUN_WORKERS must be a whole number from 0 to 64, got "${workers}"`);
  }
  if (n === 0) return new InlineCryptoPool();
  return new WorkerCryptoPool({
    workers: n,
    entry: opts.workerEntry ?? Deno.mainModule,
    cryptoEnv: opts.cryptoEnv,
  });
}
