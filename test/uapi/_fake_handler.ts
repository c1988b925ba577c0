// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A UapiHandler for framing and server tests: it records what it is asked
 * and fails on `fail=<errno>` (UapiError) and `throw=…` (plain Error) lines.
 */
import { UapiError } from "../../uapi/errors.ts";
import type { UapiHandler, UapiSetSession } from "../../uapi/protocol.ts";

/** A handler that records what it is asked and fails on `fail=<errno>` lines. */
export class FakeHandler implements UapiHandler {
  body = "listen_port=1\n";
  log: string[] = [];
  getError: unknown = null;
  get(): string {
    this.log.push("get");
    if (this.getError) throw this.getError;
    return this.body;
  }
  set(): UapiSetSession {
    this.log.push("set");
    const log = this.log;
    return {
      line(key: string, value: string) {
        if (key === "fail") throw new UapiError(Number(value), "asked to fail");
        if (key === "throw") throw new Error("boom");
        log.push(`${key}=${value}`);
      },
      end() {
        log.push("end");
      },
    };
  }
}
