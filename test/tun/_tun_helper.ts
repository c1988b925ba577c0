// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Runs one LinuxTun scenario inside the network namespace it was started in
 * (by `ip netns exec`, from linux_test.ts) and prints its findings as one
 * JSON line. Usage: `_tun_helper.ts <scenario> <ifname> [other-netns]`.
 */
import { LinuxTun } from "../../src/tun/linux.ts";
import { LinuxBind } from "../../src/conn/udp.ts";
import { EventLoop } from "../../src/event_loop.ts";
import { runUntil } from "../_util/run_loop.ts";
import { F_DUPFD_CLOEXEC, libc } from "../../src/sys/libc.ts";

const [scenario, ifname, other] = Deno.args;

async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", {
    args,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(10_000),
  }).output();
  const dec = new TextDecoder();
  if (!out.success) throw new Error(`ip ${args.join(" ")}: ${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

function errorText(f: () => unknown): string {
  try {
    f();
    return "";
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Internet checksum of `b` (RFC 1071). */
function checksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (b.length & 1) sum += b[b.length - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4/UDP packet (UDP checksum 0 = none, allowed over IPv4). */
function udp4(src: number[], dst: number[], sport: number, dport: number, payload: Uint8Array) {
  const p = new Uint8Array(28 + payload.length);
  const dv = new DataView(p.buffer);
  p[0] = 0x45;
  dv.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set(dst, 16);
  dv.setUint16(10, checksum(p.subarray(0, 20)));
  dv.setUint16(20, sport);
  dv.setUint16(22, dport);
  dv.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}

const result: Record<string, unknown> = {};

switch (scenario) {
  case "create": {
    const tun = LinuxTun.create(ifname);
    result.name = tun.name;
    result.mtu = tun.mtu;
    result.fdOk = tun.fd >= 0;
    result.ipLink = await ip("-o", "link", "show", "dev", ifname);
    result.busy = errorText(() => LinuxTun.create(ifname));
    result.pattern = errorText(() => LinuxTun.create("gtio%d"));
    result.tooLong = errorText(() => LinuxTun.create("gtio-0123456789abcdef"));
    // WG_TUN_FD: adopt a duplicate of the fd, as a parent process would hand it over.
    const dup = libc().fcntl(tun.fd, F_DUPFD_CLOEXEC, 0);
    const adopted = LinuxTun.fromFd(dup);
    result.fromFdName = adopted.name;
    result.fromFdMtu = adopted.mtu;
    adopted.close();
    const custom = LinuxTun.create(ifname + "b", { mtu: 1280 });
    result.customMtu = custom.mtu;
    result.customIpLink = await ip("-o", "link", "show", "dev", ifname + "b");
    custom.close();
    tun.close();
    tun.close();
    result.afterClose = (await new Deno.Command("ip", {
      args: ["link", "show", "dev", ifname],
      stdout: "null",
      stderr: "null",
    }).output()).success;
    break;
  }
  case "mtu": {
    const tun = LinuxTun.create(ifname);
    result.before = tun.mtu;
    result.unchanged = tun.refreshMtu();
    await ip("link", "set", "dev", ifname, "mtu", "1300");
    result.changed = tun.refreshMtu();
    result.after = tun.mtu;
    result.again = tun.refreshMtu();
    await ip("link", "set", "dev", ifname, "mtu", "65535");
    tun.refreshMtu();
    result.capped = tun.mtu;
    tun.close();
    break;
  }
  case "io": {
    const tun = LinuxTun.create(ifname);
    await ip("addr", "add", "10.99.0.1/24", "dev", ifname);
    await ip("addr", "add", "fd99::1/64", "dev", ifname, "nodad");
    await ip("link", "set", ifname, "up");
    const loop = new EventLoop();
    let echo4 = 0, echo6 = 0, drained = 0;
    // Answer ICMP echo requests for 10.99.0.2: swap addresses, type 8 → 0, fix checksum.
    loop.add(tun.fd, () => {
      tun.drain((pkt) => {
        drained++;
        if (pkt[0] >> 4 === 6 && pkt[6] === 58 && pkt[40] === 128) echo6++;
        if (pkt[0] >> 4 !== 4 || pkt[9] !== 1) return;
        const hl = (pkt[0] & 15) * 4;
        if (pkt[hl] !== 8 || pkt[19] !== 2) return;
        echo4++;
        const reply = pkt.slice();
        reply.set(pkt.subarray(16, 20), 12);
        reply.set(pkt.subarray(12, 16), 16);
        reply[hl] = 0;
        reply[hl + 2] = reply[hl + 3] = 0;
        const c = checksum(reply.subarray(hl));
        reply[hl + 2] = c >> 8;
        reply[hl + 3] = c & 0xff;
        tun.write(reply);
      });
    });
    // The pings run on their own; the loop (which blocks this thread) answers
    // until both requests were read, then their exit is awaited.
    const ping = new Deno.Command("ping", {
      args: ["-c", "1", "-W", "3", "10.99.0.2"],
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(8_000),
    }).spawn();
    const ping6 = new Deno.Command("ping", {
      args: ["-6", "-c", "1", "-W", "1", "fd99::2"],
      stdout: "null",
      stderr: "null",
      signal: AbortSignal.timeout(8_000),
    }).spawn();
    runUntil(loop, () => echo4 > 0 && echo6 > 0, 8_000);
    result.pingOk = (await ping.status).success;
    await ping6.status;
    result.echo4 = echo4;
    result.echo6 = echo6;
    result.drained = drained;
    // A UDP packet written to the TUN reaches a local socket bound to the TUN's address.
    const got: string[] = [];
    const bind = new LinuxBind();
    const port = bind.open(
      0,
      (data, from) => got.push(`${from} ${new TextDecoder().decode(data)}`),
    );
    tun.write(udp4([10, 99, 0, 2], [10, 99, 0, 1], 4321, port, new TextEncoder().encode("hi")));
    for (const fd of bind.fds()) loop.add(fd, () => bind.drain());
    runUntil(loop, () => got.length > 0, 3000);
    result.udp = got;
    result.writeErrors = tun.writeErrors;
    tun.write(new Uint8Array([0x12, 0x34]));
    result.writeErrorsAfterJunk = tun.writeErrors;
    loop.close();
    bind.close();
    tun.close();
    break;
  }
  case "state": {
    const tun = LinuxTun.create(ifname);
    result.initial = tun.linkState();
    await ip("link", "set", ifname, "up");
    result.up = tun.linkState();
    await ip("link", "set", ifname, "down");
    result.down = tun.linkState();
    await ip("link", "set", ifname, "up");
    await ip("link", "set", ifname, "netns", other);
    result.moved = tun.linkState();
    await ip("-n", other, "link", "set", ifname, "up");
    result.movedUp = tun.linkState();
    result.movedMtuRefresh = tun.refreshMtu();
    await ip("-n", other, "link", "set", ifname, "down");
    result.movedDown = tun.linkState();
    await ip("-n", other, "link", "del", ifname);
    result.gone = tun.linkState();
    result.drain = tun.drain(() => {});
    tun.close();
    result.closed = tun.linkState();
    break;
  }
  case "delete": {
    const tun = LinuxTun.create(ifname);
    await ip("link", "set", ifname, "up");
    const loop = new EventLoop();
    let drainResult = 0, calls = 0;
    loop.add(tun.fd, () => {
      calls++;
      drainResult = tun.drain(() => {});
      if (drainResult < 0) {
        loop.remove(tun.fd);
        loop.stop();
      }
    });
    // `ip link del` runs on its own while the loop blocks this thread.
    const t0 = Date.now();
    const del = new Deno.Command("ip", {
      args: ["link", "del", ifname],
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).spawn();
    runUntil(loop, () => false, 5000);
    result.stoppedMs = Date.now() - t0;
    const delOut = await del.output();
    if (!delOut.success) throw new Error(`ip link del: ${new TextDecoder().decode(delOut.stderr)}`);
    result.drain = drainResult;
    result.calls = calls;
    result.state = tun.linkState();
    tun.write(new Uint8Array(20));
    result.writeErrors = tun.writeErrors;
    loop.close();
    tun.close();
    break;
  }
  case "eperm": {
    // Run without CAP_NET_ADMIN: TUNSETIFF is refused.
    result.error = errorText(() => LinuxTun.create(ifname));
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}

// deno-lint-ignore no-console
console.log(JSON.stringify(result));
