// SPDX-License-Identifier: Apache-2.0
/** Worker module for tests of HandshakeWorkers: serves handshake jobs. */
import { isHandshakeWorkerInit, runHandshakeWorker } from "../../src/handshake_workers.ts";

globalThis.addEventListener("message", (e: Event) => {
  const data = (e as MessageEvent).data;
  if (isHandshakeWorkerInit(data)) runHandshakeWorker(data);
});
