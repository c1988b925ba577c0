// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link DenoUdpBind}: a portable UDP edge on `Deno.listenDatagram` (needs
 * `--unstable-net`), for systems or permission sets without FFI. It opens
 * `[::]:port` and then `0.0.0.0` on the same port; where the first socket is
 * dual-stack (Linux by default: the second fails with "address in use"),
 * IPv4 peers are reached through it as `::ffff:a.b.c.d`. Without IPv6 it
 * uses `0.0.0.0` alone. Each socket is read by an async loop that hands
 * every datagram to `receive` (a view into one reused buffer, with an
 * endpoint reused while the sender stays the same); sends copy the datagram
 * and do not wait. One op per datagram each way: the FFI
 * `PolledLinuxBind` (src/conn/polled_bind.ts) batches and is many times
 * faster where FFI is allowed.
 * `setMark` is accepted and has no effect (Deno sockets have no SO_MARK).
 */
import { type Bind, BindError, type ReceiveFn, type SendErrorFn } from "./bind.ts";
import { Endpoint } from "./endpoint.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../ip.ts";

const EADDRINUSE = 98;
/** Largest UDP payload over IPv4 or IPv6 without jumbograms. */
const MAX_DATAGRAM = 65535;

/** UDP on Deno's own sockets; see the module doc. */
export class DenoUdpBind implements Bind {
  #v6: Deno.DatagramConn | null = null;
  #v4: Deno.DatagramConn | null = null;
  #receive: ReceiveFn | null = null;
  #onSendError: SendErrorFn | null = null;
  #port = 0;
  #gen = 0;
  /** Datagrams that failed to send. */
  sendErrors = 0;

  /** The bound port while open, 0 when closed. */
  get port(): number {
    return this.#port;
  }

  open(port: number, receive: ReceiveFn, onSendError?: SendErrorFn): number {
    this.close();
    const listen = (hostname: string, p: number) =>
      Deno.listenDatagram({ transport: "udp", hostname, port: p });
    try {
      this.#v6 = listen("::", port);
      port = (this.#v6.addr as Deno.NetAddr).port;
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new BindError(-EADDRINUSE, `UDP port ${port} in use`);
      }
      this.#v6 = null; // no IPv6 here
    }
    try {
      this.#v4 = listen("0.0.0.0", port);
      port = (this.#v4.addr as Deno.NetAddr).port;
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse) || this.#v6 === null) {
        this.close();
        throw err instanceof Deno.errors.AddrInUse
          ? new BindError(-EADDRINUSE, `UDP port ${port} in use`)
          : err;
      }
      this.#v4 = null; // the IPv6 socket is dual-stack
    }
    this.#port = port;
    this.#receive = receive;
    this.#onSendError = onSendError ?? null;
    const gen = ++this.#gen;
    if (this.#v6) this.#readLoop(this.#v6, gen);
    if (this.#v4) this.#readLoop(this.#v4, gen);
    return port;
  }

  async #readLoop(conn: Deno.DatagramConn, gen: number): Promise<void> {
    // One buffer per socket, reused: receive() without one allocates 64 KiB per datagram,
    // and the device copies what it keeps before the next receive.
    const buf = new Uint8Array(MAX_DATAGRAM);
    let lastHost = "", lastPort = -1;
    let ep: Endpoint | null = null;
    for (;;) {
      let msg: [Uint8Array, Deno.Addr];
      try {
        msg = await conn.receive(buf);
      } catch {
        return; // closed
      }
      if (gen !== this.#gen) return;
      const a = msg[1] as Deno.NetAddr;
      // Parsed again only when the sender changes (the callback may modify the endpoint).
      if (a.hostname !== lastHost || a.port !== lastPort || ep === null) {
        ep = endpointOf(a);
        lastHost = a.hostname;
        lastPort = a.port;
      } else {
        ep.srcAddress = null;
        ep.srcIfindex = 0;
      }
      if (ep) this.#receive?.(msg[0], ep);
    }
  }

  close(): void {
    this.#gen++;
    for (const c of [this.#v6, this.#v4]) {
      try {
        c?.close();
      } catch {
        // already closed
      }
    }
    this.#v6 = this.#v4 = null;
    this.#receive = null;
    this.#port = 0;
  }

  setMark(_mark: number): void {}

  send(data: Uint8Array, endpoint: Endpoint, owner?: object): boolean {
    let conn: Deno.DatagramConn | null;
    let hostname: string;
    if (endpoint.family === 4) {
      conn = this.#v4 ?? this.#v6;
      hostname = conn === this.#v4
        ? formatIPv4(endpoint.address)
        : `::ffff:${formatIPv4(endpoint.address)}`;
    } else {
      conn = this.#v6;
      hostname = formatIPv6(endpoint.address);
    }
    if (!conn) return false;
    const bytes = data.length;
    conn.send(data.slice(), { transport: "udp", hostname, port: endpoint.port }).catch(() => {
      this.sendErrors++;
      if (owner) this.#onSendError?.(owner, bytes);
    });
    return true;
  }
}

/** The endpoint for a Deno address; IPv4-mapped IPv6 becomes IPv4. */
function endpointOf(a: Deno.NetAddr): Endpoint | null {
  const h = a.hostname;
  const mapped = h.toLowerCase().startsWith("::ffff:") ? parseIPv4(h.slice(7)) : null;
  const v4 = mapped ?? parseIPv4(h);
  if (v4) return new Endpoint(4, v4, a.port);
  const pct = h.indexOf("%");
  const v6 = parseIPv6(pct >= 0 ? h.slice(0, pct) : h);
  return v6 ? new Endpoint(6, v6, a.port, pct >= 0 ? h.slice(pct + 1) : "") : null;
}
