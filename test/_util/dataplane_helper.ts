// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Runs {@link Dataplane}s in Workers, as the daemon does, inside the network
 * namespace it was started in (`ip netns exec`, from test/dataplane_test.ts),
 * and prints its findings as one JSON line. The same module is the Worker:
 * it opens a Dataplane, tells the main thread, and on "go" runs it on its
 * thread (blocked in epoll_wait) until it stops, then posts why.
 *
 * Scenarios:
 * - `delete <iface>`: one Dataplane; `ip link del` while it runs.
 * - `idle <ifaceA> <ifaceB>`: two Dataplanes that are each other's peer over
 *   loopback with persistent keepalive 1 s. Once its first handshake is
 *   done and a settling time has passed, each one counts its loop's wake-ups
 *   over a window (by its own timers), and stops a little later.
 */
import { Dataplane } from "../../src/dataplane.ts";
import { type Logger, LogLevel } from "../../src/log.ts";
import { systemRng } from "../../src/clock.ts";
import { generatePrivateKey, publicKey } from "../../src/crypto.ts";
import { keyToHex } from "../../src/keys.ts";
import { ipcSet } from "../../uapi/apply.ts";

/** Idle scenario: from the start of the run to the window, the window, and the tail after it. */
export const SETTLE_MS = 1000;
export const WINDOW_MS = 3000;
const TAIL_MS = 1000;
/** Longest wait for the first handshake. */
const HANDSHAKE_WAIT_MS = 30_000;

/** What starts a Worker. */
interface Start {
  iface: string;
  /** UAPI `set` text applied once the loop runs (the link is up by then), or "". */
  config: string;
  /** Count wake-ups over a window, then stop (idle scenario). */
  measure: boolean;
}

/** What a Worker posts. */
type Event =
  | { kind: "opened"; iface: string }
  | { kind: "running" }
  | { kind: "failed"; error: string }
  | { kind: "stopped"; result: Record<string, unknown> };

// ---- the Worker

const workerSelf = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Start | "go">) => void) | null;
  postMessage(m: Event): void;
};

function runWorker(start: Start): void {
  const errors: string[] = [], log: string[] = [];
  const logger: Logger = {
    verbose: (m: string) => log.push(m),
    error: (m: string) => {
      errors.push(m);
      log.push(m);
    },
    level: LogLevel.Verbose,
  };
  let dp: Dataplane;
  try {
    dp = Dataplane.open({
      iface: start.iface,
      tunFd: null,
      offload: false,
      logger: () => logger,
      workers: "0",
    });
  } catch (err) {
    workerSelf.postMessage({ kind: "failed", error: String(err) });
    return;
  }
  workerSelf.postMessage({ kind: "opened", iface: dp.name });
  workerSelf.onmessage = () => {
    workerSelf.onmessage = null;
    const result: Record<string, unknown> = {};
    const loop = dp.loop;
    loop.after(0, () => workerSelf.postMessage({ kind: "running" }));
    if (start.config !== "") {
      loop.after(0, () => {
        result.configError = ipcSet(dp.device, start.config)?.message ?? null;
        dp.afterSet();
      });
    }
    if (start.measure) {
      const peer = () => dp.device.peers().next().value!;
      let wakeups = 0, tx = 0, rx = 0;
      // The window opens SETTLE_MS after this side's first handshake (looked
      // for every 100 ms, for at most HANDSHAKE_WAIT_MS: a loaded machine is slow).
      const openWindow = () => {
        wakeups = loop.wakeups;
        tx = peer().txBytes;
        rx = peer().rxBytes;
        loop.after(WINDOW_MS, () => {
          result.windowWakeups = loop.wakeups - wakeups;
          result.windowTxBytes = peer().txBytes - tx;
          result.windowRxBytes = peer().rxBytes - rx;
          loop.after(TAIL_MS, () => dp.stop());
        });
      };
      const started = performance.now();
      const look = () => {
        if (peer().lastHandshakeTime().sec > 0) {
          result.handshakeBeforeWindow = true;
          loop.after(SETTLE_MS, openWindow);
        } else if (performance.now() - started > HANDSHAKE_WAIT_MS) {
          result.handshakeBeforeWindow = false;
          dp.stop();
        } else {
          loop.after(100, look);
        }
      };
      loop.after(100, look);
    }
    result.why = dp.run();
    result.totalWakeups = loop.wakeups;
    result.errors = errors;
    result.log = log;
    dp.close();
    workerSelf.postMessage({ kind: "stopped", result });
  };
}

if ("WorkerGlobalScope" in globalThis) {
  workerSelf.onmessage = (e) => {
    workerSelf.onmessage = null;
    runWorker(e.data as Start);
  };
}

// ---- the main thread

/** A Worker running one Dataplane, with its events in order. */
class Plane {
  readonly #worker = new Worker(import.meta.url, { type: "module" });
  readonly #events: Event[] = [];
  readonly #waiting: (() => void)[] = [];

  constructor(start: Start) {
    this.#worker.onmessage = (e: MessageEvent<Event>) => {
      this.#events.push(e.data);
      this.#waiting.shift()?.();
    };
    this.#worker.postMessage(start);
  }

  /** The next event, or throws after `ms` (only a broken data plane gets there). */
  async next(ms = 20_000): Promise<Event> {
    if (this.#events.length === 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#waiting.push(resolve)),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no event from the data-plane Worker")), ms);
        }),
      ]).finally(() => clearTimeout(timer));
    }
    return this.#events.shift()!;
  }

  /** Waits for an event of `kind`, throws on any other. */
  async expect(kind: "opened" | "running"): Promise<void> {
    const ev = await this.next();
    if (ev.kind !== kind) throw new Error(`expected ${kind}, got ${JSON.stringify(ev)}`);
  }

  /** Lets the Worker run its loop; resolves once the loop runs. */
  go(): Promise<void> {
    this.start();
    return this.expect("running");
  }

  /** Lets the Worker run its Dataplane, without waiting for the loop to turn. */
  start(): void {
    this.#worker.postMessage("go");
  }

  /** Waits for "stopped" and returns the Worker's findings. */
  async stopped(): Promise<Record<string, unknown>> {
    const ev = await this.next();
    if (ev.kind !== "stopped") throw new Error(`unexpected ${JSON.stringify(ev)}`);
    return ev.result;
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

async function ip(...args: string[]): Promise<void> {
  const out = await new Deno.Command("ip", {
    args,
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function peerConfig(
  priv: Uint8Array,
  port: number,
  peerPriv: Uint8Array,
  peerPort: number,
  keepalive: number,
): string {
  return [
    `private_key=${keyToHex(priv)}`,
    `listen_port=${port}`,
    `public_key=${keyToHex(publicKey(peerPriv))}`,
    `endpoint=127.0.0.1:${peerPort}`,
    `persistent_keepalive_interval=${keepalive}`,
    `allowed_ip=10.${port % 250}.0.0/24`,
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const [scenario, ...ifaces] = Deno.args;
  const result: Record<string, unknown> = {};
  if (scenario === "delete" || scenario === "delete-before-run") {
    // "delete-before-run": the link goes away between the TUN's creation and
    // the loop's start (the daemon's warm-up runs there); run() must end at
    // once, not wait forever.
    const plane = new Plane({ iface: ifaces[0], config: "", measure: false });
    try {
      await plane.expect("opened");
      if (scenario === "delete") {
        await ip("link", "set", ifaces[0], "up");
        await plane.go();
        await ip("link", "del", ifaces[0]);
      } else {
        await ip("link", "del", ifaces[0]);
        plane.start();
      }
      Object.assign(result, await plane.stopped());
    } finally {
      plane.terminate();
    }
  } else if (scenario === "idle") {
    const keyA = generatePrivateKey(systemRng), keyB = generatePrivateKey(systemRng);
    const a = new Plane({
      iface: ifaces[0],
      config: peerConfig(keyA, 51820, keyB, 51821, 1),
      measure: true,
    });
    const b = new Plane({
      iface: ifaces[1],
      // Only A keeps alive: two peers that both initiate at once would cross
      // their handshakes (each drops its own for the other's) and retry 5 s later.
      config: peerConfig(keyB, 51821, keyA, 51820, 0),
      measure: true,
    });
    try {
      await a.expect("opened");
      await b.expect("opened");
      await ip("link", "set", ifaces[0], "up");
      await ip("link", "set", ifaces[1], "up");
      await Promise.all([a.go(), b.go()]);
      result.a = await a.stopped();
      result.b = await b.stopped();
    } finally {
      a.terminate();
      b.terminate();
    }
  } else {
    throw new Error(`unknown scenario ${scenario}`);
  }
  // deno-lint-ignore no-console
  console.log(JSON.stringify(result));
}

if (import.meta.main && !("WorkerGlobalScope" in globalThis)) await main();
