// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * A LinuxBind echo server for udp_test.ts, run inside a network namespace.
 * Prints `READY <port>`, then answers text commands until killed or "quit":
 * - `echo:X`  → `echo:X` to the sender, from the address the request reached (sticky)
 * - `plain:X` → `plain:X` with the sticky source cleared (routing picks the source)
 * - `d:N`     → counted; `count` → `count=<n> inorder=<bool>`
 * - `burst:N` → N datagrams `b:0` … `b:N-1` in one batch
 * - `hold`    → keeps a clone of the sender's endpoint, answers `held:<src>`
 * - `replyheld` → sends `fromheld` through the held endpoint (whose source may
 *   have vanished), then `heldsrc=<src|null>` to the sender
 *
 * Usage: `_udp_server.ts <port>`.
 */
import { LinuxBind } from "../../src/conn/udp.ts";
import type { Endpoint } from "../../src/conn/endpoint.ts";
import { EventLoop } from "../../src/event_loop.ts";
import { formatIPv4, formatIPv6 } from "../../src/ip.ts";

const enc = new TextEncoder(), dec = new TextDecoder();
const bind = new LinuxBind();
const loop = new EventLoop();
let count = 0, next = 0, inOrder = true;
let held: Endpoint | null = null;

function src(ep: Endpoint): string {
  const a = ep.srcAddress;
  if (a === null) return "null";
  return a.length === 4 ? formatIPv4(a) : formatIPv6(a);
}

function reply(text: string, to: Endpoint): void {
  if (!bind.send(enc.encode(text), to)) throw new Error(`send to ${to} refused`);
}

function onDatagram(data: Uint8Array, from: Endpoint): void {
  const text = dec.decode(data);
  const [cmd, arg] = text.split(":");
  switch (cmd) {
    case "echo":
      reply(text, from.clone());
      break;
    case "plain": {
      const ep = from.clone();
      ep.clearSrc();
      reply(text, ep);
      break;
    }
    case "d":
      if (Number(arg) !== next) inOrder = false;
      next = Number(arg) + 1;
      count++;
      break;
    case "count":
      reply(`count=${count} inorder=${inOrder}`, from.clone());
      break;
    case "burst": {
      const ep = from.clone();
      for (let i = 0; i < Number(arg); i++) reply(`b:${i}`, ep);
      break;
    }
    case "hold":
      held = from.clone();
      reply(`held:${src(held)}`, from.clone());
      break;
    case "replyheld":
      if (held !== null) {
        reply("fromheld", held);
        bind.flush();
        reply(`heldsrc=${src(held)} errno=${bind.lastSendErrno}`, from.clone());
      }
      break;
    case "quit":
      loop.stop();
      break;
  }
}

const port = bind.open(Number(Deno.args[0] ?? 0), onDatagram);
for (const fd of bind.fds()) {
  loop.add(fd, () => {
    bind.drain();
    bind.flush();
  });
}
// deno-lint-ignore no-console
console.log(`READY ${port}`);
// Nothing else runs here: the loop blocks this thread until "quit" (or a kill).
loop.run();
loop.close();
bind.close();
