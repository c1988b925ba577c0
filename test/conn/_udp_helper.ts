// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Runs one LinuxBind scenario inside the network namespace it was started in
 * (by `ip netns exec`, from udp_test.ts) and prints its findings as one JSON
 * line. Usage: `_udp_helper.ts <scenario> [args…]`.
 */
import { LinuxBind, socketMark } from "../../src/conn/udp.ts";
import { BindError } from "../../src/conn/bind.ts";
import { Endpoint } from "../../src/conn/endpoint.ts";
import { EventLoop } from "../../src/event_loop.ts";
import { runUntil } from "../_util/run_loop.ts";
import {
  getsockoptInt,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  SO_RCVBUF,
  SO_SNDBUF,
  SOL_SOCKET,
} from "../../src/sys/libc.ts";

const [scenario, ...args] = Deno.args;
const enc = new TextEncoder(), dec = new TextDecoder();
const result: Record<string, unknown> = {};

async function run(cmd: string, ...a: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args: a,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  if (!out.success) throw new Error(`${cmd} ${a.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

function bindErrorOf(f: () => unknown): { errno: number; message: string } | string {
  try {
    f();
    return "no error";
  } catch (err) {
    if (err instanceof BindError) return { errno: err.errno, message: err.message };
    return String(err);
  }
}

/** A bind plus an event loop that queues what arrives as "<from> <text>". */
class Peer {
  readonly bind = new LinuxBind();
  readonly got: { from: string; text: string }[] = [];
  readonly port: number;
  #loop = new EventLoop();

  constructor(port = 0) {
    this.port = this.bind.open(port, (data, from) => {
      this.got.push({ from: from.toString(), text: dec.decode(data) });
    });
    for (const fd of this.bind.fds()) this.#loop.add(fd, () => this.bind.drain());
  }

  send(text: string, to: string): void {
    if (!this.bind.send(enc.encode(text), Endpoint.parse(to))) throw new Error(`send ${to}`);
  }

  /**
   * Flushes what was sent, runs the loop until `n` datagrams are queued (or
   * for at most `ms`), then takes them. Datagrams that come while no loop
   * runs wait in the socket.
   */
  take(n: number, ms = 3000): { from: string; text: string }[] {
    this.bind.flush();
    runUntil(this.#loop, () => this.got.length >= n, ms);
    return this.got.splice(0, this.got.length);
  }

  close(): void {
    this.#loop.close();
    this.bind.close();
  }
}

switch (scenario) {
  case "ports": {
    const a = new LinuxBind();
    const port = a.open(0, () => {});
    result.port = port;
    result.fds = a.fds().length;
    result.v6only = getsockoptInt(a.fds()[1], IPPROTO_IPV6, IPV6_V6ONLY);
    result.rcvbuf = getsockoptInt(a.fds()[0], SOL_SOCKET, SO_RCVBUF);
    result.sndbuf = getsockoptInt(a.fds()[0], SOL_SOCKET, SO_SNDBUF);
    result.ss = await run("ss", "-Huan");
    result.inUse = bindErrorOf(() => new LinuxBind().open(port, () => {}));
    const fixed = Number(args[0]);
    result.fixed = a.open(fixed, () => {});
    result.fixedFds = a.fds().length;
    result.ssAfterReopen = await run("ss", "-Huan");
    const b = new LinuxBind();
    result.portZeroAgain = b.open(0, () => {}) !== fixed;
    b.close();
    a.close();
    a.close();
    result.fdsAfterClose = a.fds().length;
    result.portAfterClose = a.port;
    result.sendAfterClose = a.send(new Uint8Array(1), Endpoint.parse("127.0.0.1:9"));
    result.ssAfterClose = await run("ss", "-Huan");
    break;
  }
  case "mark": {
    const a = new LinuxBind();
    a.setMark(0x1234);
    a.open(0, () => {});
    result.marks = a.fds().map(socketMark);
    result.ss = await run("ss", "-Huane");
    a.setMark(0xca6c);
    result.marksChanged = a.fds().map(socketMark);
    a.close();
    a.open(0, () => {});
    result.marksReopened = a.fds().map(socketMark);
    a.setMark(0);
    result.marksCleared = a.fds().map(socketMark);
    a.close();
    break;
  }
  case "markperm": {
    // Run without CAP_NET_ADMIN: SO_MARK is refused.
    const a = new LinuxBind();
    a.open(0, () => {});
    result.openOk = a.fds().length;
    result.setMark = bindErrorOf(() => a.setMark(7));
    result.markRemembered = a.mark;
    a.close();
    result.reopen = bindErrorOf(() => a.open(0, () => {}));
    result.fdsAfterFailedOpen = a.fds().length;
    break;
  }
  case "loopback": {
    // Batching on loopback: 100 datagrams each way per family, order kept.
    const a = new Peer(), b = new Peer();
    for (const host of ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]"]) {
      for (let i = 0; i < 100; i++) a.send(`x:${i}`, `${host}:${b.port}`);
      a.bind.flush();
      const got = b.take(100);
      result[`count ${host}`] = got.length;
      result[`inorder ${host}`] = got.every((g, i) => g.text === `x:${i}`);
      result[`from ${host}`] = got[0]?.from;
    }
    // drain(max, fd) reads only that socket; the other's datagrams wait for their turn.
    const [fd4, fd6] = b.bind.fds();
    for (let i = 0; i < 3; i++) a.send(`v4:${i}`, `127.0.0.1:${b.port}`);
    for (let i = 0; i < 2; i++) a.send(`v6:${i}`, `[::1]:${b.port}`);
    a.bind.flush();
    result.onlyV6 = b.bind.drain(1024, fd6);
    result.onlyV6Got = b.got.splice(0).map((g) => g.text);
    result.onlyV4 = b.bind.drain(1024, fd4);
    result.onlyV4Got = b.got.splice(0).map((g) => g.text);
    result.sendErrors = a.bind.sendErrors;
    result.recvErrors = b.bind.recvErrors;
    // Large datagram (jumbo: loopback MTU 65536) survives the slot.
    const big = new Uint8Array(60000).fill(7);
    a.bind.send(big, Endpoint.parse(`127.0.0.1:${b.port}`));
    a.bind.flush();
    result.bigLen = b.take(1)[0]?.text.length;
    a.close();
    b.close();
    break;
  }
  case "client": {
    // Talks to _udp_server.ts in another namespace over a veth pair.
    const [v4a, v4b, v6a, v6b, port, peerNs, peerDev, linkLocal] = args;
    const c = new Peer();
    const one = (text: string, to: string) => {
      c.send(text, to);
      const got = c.take(1);
      return got[0] ?? null;
    };
    result.echo4a = one("echo:1", `${v4a}:${port}`);
    result.echo4b = one("echo:2", `${v4b}:${port}`);
    result.plain4a = one("plain:1", `${v4a}:${port}`);
    result.plain4b = one("plain:2", `${v4b}:${port}`);
    result.echo6a = one("echo:3", `[${v6a}]:${port}`);
    result.echo6b = one("echo:4", `[${v6b}]:${port}`);
    result.plain6a = one("plain:3", `[${v6a}]:${port}`);
    result.plain6b = one("plain:4", `[${v6b}]:${port}`);
    // A link-local peer with the zone given by interface name.
    result.echoLinkLocal = one("echo:5", `[${linkLocal}]:${port}`);
    for (let i = 0; i < 100; i++) c.send(`d:${i}`, `${v4a}:${port}`);
    result.count = one("count", `${v4a}:${port}`);
    c.send("burst:100", `[${v6a}]:${port}`);
    const burst = c.take(100);
    result.burstCount = burst.length;
    result.burstInOrder = burst.every((g, i) => g.text === `b:${i}`);
    result.held = one("hold", `${v4b}:${port}`);
    await run("ip", "-n", peerNs, "addr", "del", `${v4b}/24`, "dev", peerDev);
    c.send("replyheld", `${v4a}:${port}`);
    result.replyHeld = c.take(2);
    result.sendErrors = c.bind.sendErrors;
    c.send("quit", `${v4a}:${port}`);
    c.take(0, 0);
    c.close();
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}

// deno-lint-ignore no-console
console.log(JSON.stringify(result));
