// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link churn}: connections opened, used and closed one after another
 * between the two stacks of a {@link Link}, for the churn test and the
 * memory measurement.
 */
import type { Link } from "./_link.ts";
import type { TcpConn } from "../../src/netstack/tcp_conn.ts";
import type { TcpListener } from "../../src/netstack/tcp_listener.ts";
import { TcpState } from "../../src/netstack/tcp_state.ts";

/**
 * `n` times in a row: A connects to `lis`, sends `msg`, B echoes it, A
 * closes first (so A's side waits in TIME_WAIT), B closes after the EOF.
 * Returns the connections that did not get there within 5 s of fake time.
 */
export function churn(
  l: Link,
  lis: TcpListener,
  n: number,
  msg: Uint8Array,
  buf: Uint8Array,
): TcpConn[] {
  const stuck: TcpConn[] = [];
  for (let i = 0; i < n; i++) {
    const c = l.a.connect("10.0.0.2", lis.port);
    let s: TcpConn | null = null;
    let gotS = 0, gotC = 0;
    const ok = l.until(() => (s ??= lis.accept()) !== null, 5000) &&
      c.write(msg) === msg.length &&
      l.until(() => {
        const k = s!.read(buf);
        if (k > 0) gotS += k;
        return gotS === msg.length;
      }, 5000) &&
      s!.write(msg) === msg.length &&
      l.until(() => {
        const k = c.read(buf);
        if (k > 0) gotC += k;
        return gotC === msg.length;
      }, 5000) &&
      (c.close(), l.until(() => s!.read(buf) === -1, 5000)) &&
      (s!.close(),
        l.until(() => c.state === TcpState.TimeWait && s!.state === TcpState.Closed, 5000));
    if (!ok) stuck.push(c);
  }
  return stuck;
}
