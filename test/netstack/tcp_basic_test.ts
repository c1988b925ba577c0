// SPDX-License-Identifier: Apache-2.0
// TCP between two stacks back to back: handshake, data both ways, close.
import assert from "node:assert/strict";
import { link } from "./_link.ts";
import { TcpState } from "../../src/netstack/tcp_state.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

for (const [family, addr] of [[4, "10.0.0.2"], [6, "fd00::2"]] as const) {
  Deno.test(`tcp/${family}: handshake, echo, FIN both ways, TIME_WAIT then gone`, () => {
    const l = link();
    const lis = l.b.listen(80);
    const c = l.a.connect(addr, 80);
    let connected = false;
    c.onConnect = () => connected = true;
    assert.ok(l.until(() => connected && lis.queue.length === 1, 5000));
    const s = lis.accept()!;
    assert.equal(s.state, TcpState.Established);
    assert.equal(c.mss, 1420 - (family === 4 ? 40 : 60) - 12);
    assert.equal(c.write(enc.encode("hello")), 5);
    const buf = new Uint8Array(100);
    assert.ok(l.until(() => s.readable === 5, 5000));
    assert.equal(dec.decode(buf.subarray(0, s.read(buf))), "hello");
    s.write(enc.encode("world!"));
    s.shutdown();
    assert.ok(l.until(() => c.finReceived, 5000));
    assert.equal(dec.decode(buf.subarray(0, c.read(buf))), "world!");
    assert.equal(c.read(buf), -1);
    assert.ok(l.until(() => s.state === TcpState.FinWait2, 5000));
    c.close();
    assert.ok(l.until(() => s.state === TcpState.TimeWait && c.state === TcpState.Closed, 5000));
    assert.equal(s.read(buf), -1);
    l.run(60_000 + 1000, 1000);
    assert.equal(s.state, TcpState.Closed);
    assert.equal(l.a.connectionCount, 0);
    assert.equal(l.b.connectionCount, 0);
    assert.equal(l.clock.pending, 0);
  });
}
