// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The daemon's data-plane Worker: it runs one {@link Dataplane} (TUN, UDP,
 * device, timers) on its own thread, blocked in `epoll_wait` between
 * packets, and answers the main thread's requests (UAPI connections, a
 * metrics scrape, stop) through the control channel.
 *
 * The two threads share nothing else. The Worker tells the main thread, by
 * `postMessage`, that it is ready (with the interface's name), that it
 * failed to start (after logging wireguard-go's message itself), or that it
 * stopped on its own (the link was deleted).
 */
import { ControlServer } from "../src/control.ts";
import { cryptoBackend } from "../src/crypto.ts";
import { Dataplane } from "../src/dataplane.ts";
import { createLogger, type LogLevel } from "../src/log.ts";
import { deviceHandler } from "../uapi/apply.ts";
import type { UapiHandler } from "../uapi/protocol.ts";
import { UapiSessions } from "../uapi/remote.ts";
import { formatMetrics, type MetricsExtra } from "./metrics.ts";
import { writeStdout } from "./output.ts";

/** The `kind` of the message that starts a data-plane Worker. */
export const DATAPLANE_KIND = "gotatun-dataplane";
/** Control op: the metrics text; payload: the main thread's MetricsExtra as JSON. */
export const OP_METRICS = 16;
/** Control op: close the device (keys wiped) and end the loop; answered once done. */
export const OP_STOP = 17;

/** The message that starts the Worker. */
export interface DataplaneInit {
  kind: typeof DATAPLANE_KIND;
  control: SharedArrayBuffer;
  wakeFd: number;
  iface: string;
  tunFd: number | null;
  offload: boolean;
  logLevel: LogLevel;
  cryptoEnv?: string;
  workers?: string;
  handshakeWorkers?: string;
  workerEntry: string;
}

/** What the Worker posts to the main thread. */
export type DataplaneEvent =
  | { kind: "ready"; iface: string }
  | { kind: "failed" }
  | { kind: "stopped"; why: string };

/** True for a {@link DataplaneInit} message. */
export function isDataplaneInit(m: unknown): m is DataplaneInit {
  return typeof m === "object" && m !== null && (m as { kind?: unknown }).kind === DATAPLANE_KIND;
}

function post(event: DataplaneEvent): void {
  (globalThis as unknown as { postMessage(m: unknown): void }).postMessage(event);
}

/**
 * Runs the data plane on this (Worker) thread until it is stopped or its
 * link is deleted. Returns only then.
 */
export function runDataplaneWorker(init: DataplaneInit): void {
  const logFor = (iface: string) => createLogger(init.logLevel, iface, writeStdout);
  let dp: Dataplane;
  try {
    dp = Dataplane.open({
      iface: init.iface,
      tunFd: init.tunFd,
      offload: init.offload,
      logger: logFor,
      wakeFd: init.wakeFd,
      cryptoEnv: init.cryptoEnv,
      workers: init.workers,
      handshakeWorkers: init.handshakeWorkers,
      workerEntry: init.workerEntry,
    });
  } catch (err) {
    logFor(init.iface).error(err instanceof Error ? err.message : String(err));
    post({ kind: "failed" });
    return;
  }
  const device = dp.device;
  device.log.verbose("Device started");
  const sessions = new UapiSessions(
    resyncingHandler(deviceHandler(device), () => dp.afterSet()),
    device.log,
  );
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const control = new ControlServer(init.control, (op, arg, payload) => {
    const r = sessions.handle(op, arg, payload);
    if (r !== null) return r;
    if (op === OP_METRICS) {
      const extra = JSON.parse(decoder.decode(payload)) as MetricsExtra;
      extra.cryptoBackend = cryptoBackend().name;
      return { data: encoder.encode(formatMetrics(device, extra)) };
    }
    if (op === OP_STOP) {
      dp.close();
      return {};
    }
    throw new Error(`unknown control op ${op}`);
  });
  dp.loop.onWake = () => control.poll();
  post({ kind: "ready", iface: dp.name });
  // After the first postMessage, which would undo it (see Dataplane.warmUp).
  dp.warmUp();
  const why = dp.run();
  dp.close();
  control.close();
  post({ kind: "stopped", why });
}

/**
 * resyncingHandler() wraps the device's UAPI handler so that `afterSet` runs
 * once a `set` is over, or when one of its lines failed, and after the lines
 * that may reopen the sockets: the loop must then watch the new fds.
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
