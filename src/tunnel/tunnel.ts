// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link Tunnel}: WireGuard inside a Deno program, without root or a TUN
 * device. A {@link Device} gets a {@link NetStack} as its Tun and a UDP
 * {@link Bind} (by default `DenoUdpBind`, Deno's own sockets, which
 * needs `--unstable-net`); the stack's TCP connections come out as
 * {@link TunnelConn}s with web streams, its UDP ports as
 * {@link TunnelDatagramConn}s, and names are resolved by a
 * {@link DnsResolver} asking the `[Interface] DNS` servers through the
 * tunnel.
 */
import { type Clock, realClock, type Rng, systemRng } from "../clock.ts";
import type { Bind } from "../conn/bind.ts";
import { PolledLinuxBind, preferredBind } from "../conn/polled_bind.ts";
import { Endpoint } from "../conn/endpoint.ts";
import { Device } from "../device.ts";
import { parseIPv4, parseIPv6, parsePrefix } from "../ip.ts";
import { isZeroKey, keyToHex } from "../keys.ts";
import { type Logger, silentLogger } from "../log.ts";
import { NetStack } from "../netstack/stack.ts";
import type { TcpConfig } from "../netstack/tcp_config.ts";
import type { TcpListener } from "../netstack/tcp_listener.ts";
import { parseTunnelConfig, type TunnelConfig, TunnelConfigError } from "./config.ts";
import { TunnelConn, TunnelError } from "./conn.ts";
import { TunnelDatagramConn } from "./datagram.ts";
import { DnsResolver, type DnsResolverConfig, ipLiteral } from "./resolver.ts";
import { serveHttpProxy } from "./http_proxy.ts";
import { ProxyCredentials } from "./proxy_auth.ts";
import { closeQuietly } from "./relay.ts";

/** Options for {@link Tunnel.fromConfig}. */
export interface TunnelOptions {
  /** The UDP edge (default: {@link preferredBind}, a {@link PolledLinuxBind} or a `DenoUdpBind`). */
  bind?: Bind;
  clock?: Clock;
  rng?: Rng;
  logger?: Logger;
  /** TCP settings of the stack. */
  tcp?: Partial<TcpConfig>;
  /** Resolves an Endpoint host name to addresses (default: `Deno.resolveDns`, A then AAAA). */
  resolveEndpoint?: (name: string) => Promise<string[]>;
  /** Timeouts, retries and cache of {@link Tunnel.resolve}. */
  dns?: DnsResolverConfig;
}

async function defaultResolve(name: string): Promise<string[]> {
  const a = await Deno.resolveDns(name, "A").catch(() => [] as string[]);
  return a.length > 0 ? a : await Deno.resolveDns(name, "AAAA").catch(() => [] as string[]);
}

/** `host:port` with the host made numeric. */
async function numericEndpoint(
  text: string,
  resolve: (name: string) => Promise<string[]>,
): Promise<string> {
  const colon = text.lastIndexOf(":");
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  const port = text.slice(colon + 1);
  if (parseIPv4(host)) return `${host}:${port}`;
  if (parseIPv6(host.split("%")[0])) return `[${host}]:${port}`;
  const found = await resolve(host);
  if (found.length === 0) throw new Error(`Cannot resolve endpoint ${host}`);
  return found[0].includes(":") ? `[${found[0]}]:${port}` : `${found[0]}:${port}`;
}

/**
 * Applies the WireGuard part of `cfg` to `device`, which is new and not up,
 * as the UAPI `set` of wg-quick's `wg setconf` would: private key, listen
 * port, fwmark, then per peer its preshared key, endpoint, persistent
 * keepalive and allowed IPs (replacing earlier ones). A peer with our own
 * public key is ignored; a public key given twice updates the same peer.
 * `endpoints[i]` is peer i's endpoint as a numeric `ip:port`. The peers
 * start (and send their first keepalive) when the device goes up.
 * Throws {@link TunnelConfigError} naming the peer.
 */
function applyConfig(device: Device, cfg: TunnelConfig, endpoints: (string | null)[]): void {
  // Device copies the keys it is given; all zeros is "no private key".
  device.setPrivateKey(cfg.privateKey);
  device.setListenPort(cfg.listenPort ?? 0);
  device.setFwmark(cfg.fwmark);
  const own = device.publicKey;
  cfg.peers.forEach((p, i) => {
    const where = `[Peer] ${i + 1}`;
    // Without a private key our public key counts as all zeros (as in wireguard-go).
    if (own ? keyToHex(own) === keyToHex(p.publicKey) : isZeroKey(p.publicKey)) return;
    let peer = device.lookupPeer(p.publicKey);
    if (!peer) {
      try {
        peer = device.newPeer(p.publicKey.slice());
      } catch (err) {
        throw new TunnelConfigError(`${where}: ${(err as Error).message}`);
      }
    }
    if (p.presharedKey) peer.setPresharedKey(p.presharedKey);
    const ep = endpoints[i];
    if (ep) {
      let endpoint: Endpoint;
      try {
        endpoint = Endpoint.parse(ep);
      } catch (err) {
        throw new TunnelConfigError(`${where}: invalid Endpoint: ${(err as Error).message}`);
      }
      peer.setEndpoint(endpoint);
    }
    peer.setPersistentKeepaliveInterval(p.persistentKeepalive);
    device.allowedIps.removeByValue(peer);
    for (const a of p.allowedIps) {
      const prefix = parsePrefix(a);
      if (!prefix) throw new TunnelConfigError(`${where}: invalid AllowedIPs "${a}"`);
      device.allowedIps.insert(prefix.family, prefix.ip, prefix.cidr, peer);
    }
  });
}

/** A listening TCP port of the tunnel. */
export class TunnelListener implements AsyncIterable<TunnelConn> {
  readonly addr: Deno.NetAddr;
  readonly #l: TcpListener;
  #wake: (() => void) | null = null;

  constructor(l: TcpListener, hostname: string) {
    this.#l = l;
    this.addr = { transport: "tcp", hostname, port: l.port };
    l.onAcceptable = () => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
  }

  /** The next connection; rejects once the listener is closed. */
  async accept(): Promise<TunnelConn> {
    for (;;) {
      if (this.#l.closed) throw new Error("Listener closed");
      const c = this.#l.accept();
      if (c) return new TunnelConn(c);
      await new Promise<void>((r) => this.#wake = r);
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TunnelConn> {
    for (;;) {
      try {
        yield await this.accept();
      } catch {
        return;
      }
    }
  }

  /** Stops listening; connections not yet accepted are reset. */
  close(): void {
    this.#l.close();
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
}

/** A WireGuard tunnel with its own TCP/IP stack; see the module doc. */
export class Tunnel {
  readonly device: Device;
  readonly stack: NetStack;
  readonly config: TunnelConfig;
  /** The resolver behind {@link resolve} (its counters: queries, cacheHits). */
  readonly resolver: DnsResolver;
  #closed = false;
  /** The loopback HTTP proxy behind {@link httpClient}, started on first use. */
  #httpProxy: { listener: Deno.Listener; url: string; username: string; password: string } | null =
    null;
  #httpClients = new Set<Deno.HttpClient>();
  #sharedHttpClient: Deno.HttpClient | null = null;

  private constructor(
    device: Device,
    stack: NetStack,
    config: TunnelConfig,
    rng: Rng,
    dns: DnsResolverConfig = {},
  ) {
    this.device = device;
    this.stack = stack;
    this.config = config;
    const families: (4 | 6)[] = [];
    for (const a of config.addresses) {
      const f = a.includes(":") ? 6 : 4;
      if (!families.includes(f)) families.push(f);
    }
    this.resolver = new DnsResolver({
      ...dns,
      servers: config.dns,
      search: config.dnsSearch,
      families,
      clock: stack.clock,
      rng,
      open: () => this.datagram(),
    });
  }

  /**
   * Builds and starts a tunnel from wg-quick style text (see
   * {@link parseTunnelConfig}). Endpoint names are resolved once, here.
   */
  static async fromConfig(text: string, opts: TunnelOptions = {}): Promise<Tunnel> {
    const cfg = parseTunnelConfig(text);
    const resolve = opts.resolveEndpoint ?? defaultResolve;
    const endpoints = await Promise.all(
      cfg.peers.map((p) => p.endpoint ? numericEndpoint(p.endpoint, resolve) : null),
    );
    const clock = opts.clock ?? realClock;
    const rng = opts.rng ?? systemRng;
    const stack = new NetStack({
      clock,
      rng,
      addresses: cfg.addresses,
      mtu: cfg.mtu ?? 1420,
      tcp: opts.tcp,
    });
    const bind = opts.bind ?? preferredBind();
    const device = new Device({
      tun: stack,
      bind,
      clock,
      rng,
      logger: opts.logger ?? silentLogger,
      name: "tunnel",
    });
    stack.attach(device);
    // Datagrams drained in one wake-up go through the crypto batch at once, not a turn later.
    if (bind instanceof PolledLinuxBind) bind.afterDrain = () => device.flush();
    try {
      applyConfig(device, cfg, endpoints);
    } catch (err) {
      device.close();
      throw err;
    }
    device.up();
    return new Tunnel(device, stack, cfg, rng, opts.dns);
  }

  /**
   * Opens a TCP connection through the tunnel to `hostname`, an IP address
   * or a name (resolved with {@link resolve}; its addresses are tried in
   * turn); resolves once established. `timeoutMs` (default: the SYN
   * retries, about 2 min) gives up on each address earlier with a
   * {@link TunnelError} "timeout". A name that does not resolve rejects
   * with a `DnsError` (src/tunnel/dns.ts).
   */
  async connect(
    opts: { hostname: string; port: number; timeoutMs?: number },
  ): Promise<TunnelConn> {
    this.#check();
    const literal = ipLiteral(opts.hostname);
    if (literal) return await this.#connectIp(literal, opts.port, opts.timeoutMs);
    const addresses = await this.resolve(opts.hostname);
    let last: unknown = null;
    for (const a of addresses) {
      try {
        return await this.#connectIp(a, opts.port, opts.timeoutMs);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  #connectIp(host: string, port: number, timeoutMs?: number): Promise<TunnelConn> {
    this.#check();
    const c = this.stack.connect(host, port);
    const clock = this.stack.clock;
    return new Promise((resolve, reject) => {
      let timer: number | null = null;
      let timedOut = false;
      if (timeoutMs !== undefined) {
        timer = clock.after(timeoutMs, () => {
          timedOut = true;
          c.abort();
          c.flushEvents();
        });
      }
      c.onConnect = () => {
        if (timer !== null) clock.cancel(timer);
        c.onClose = null;
        resolve(new TunnelConn(c));
      };
      c.onClose = (error) => {
        if (timer !== null && !timedOut) clock.cancel(timer);
        const code = timedOut ? "timeout" : error ?? "aborted";
        reject(new TunnelError(code, `connect to ${host}:${port}: ${code}`));
      };
    });
  }

  /**
   * Resolves `name` through the tunnel: A and AAAA records from the
   * `[Interface] DNS` servers (see {@link DnsResolver} for search domains,
   * retries, the cache and the names it refuses). IP literals come back as
   * they are. Rejects with a `DnsError`.
   */
  resolve(name: string): Promise<string[]> {
    this.#check();
    return this.resolver.resolve(name);
  }

  /**
   * Opens a UDP socket on `port` of the tunnel's addresses (default: a
   * random free port). Throws if the port is taken.
   */
  datagram(opts: { port?: number } = {}): TunnelDatagramConn {
    this.#check();
    return new TunnelDatagramConn(
      this.stack.udp(opts.port ?? 0),
      this.config.addresses[0],
      this.stack.clock,
    );
  }

  /** Listens on a TCP port of the tunnel's addresses. */
  listen(opts: { port: number }): TunnelListener {
    this.#check();
    return new TunnelListener(this.stack.listen(opts.port), this.config.addresses[0]);
  }

  /**
   * A `Deno.HttpClient` whose requests go through this tunnel:
   * `fetch("http://10.0.0.2/", { client: tunnel.httpClient() })`; https
   * URLs work too (CONNECT). On first use it starts an HTTP proxy (see
   * `http_proxy.ts`) on a free port of 127.0.0.1 with a random user and
   * password, so other local users cannot use it; names in URLs are resolved
   * as {@link connect} does. Without `options` every call returns the same
   * client; with them (any `Deno.createHttpClient` option but `proxy`) a new
   * one. The tunnel closes them all, and the proxy, in {@link close}. Needs
   * `--allow-net` for 127.0.0.1, and no unstable flag.
   */
  httpClient(options?: Omit<Deno.CreateHttpClientOptions, "proxy">): Deno.HttpClient {
    this.#check();
    if (options === undefined && this.#sharedHttpClient) return this.#sharedHttpClient;
    const proxy = this.#httpProxy ??= this.#startHttpProxy();
    const client = Deno.createHttpClient({
      ...options,
      proxy: { url: proxy.url, basicAuth: { username: proxy.username, password: proxy.password } },
    });
    this.#httpClients.add(client);
    if (options === undefined) this.#sharedHttpClient = client;
    return client;
  }

  #startHttpProxy(): { listener: Deno.Listener; url: string; username: string; password: string } {
    const hex = (n: number) =>
      Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0"))
        .join("");
    const username = `tunnel-${hex(4)}`, password = hex(16);
    const enc = new TextEncoder();
    const auth = new ProxyCredentials([{
      user: enc.encode(username),
      password: enc.encode(password),
    }]);
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
    serveHttpProxy(listener, this, { auth });
    return { listener, url: `http://127.0.0.1:${listener.addr.port}`, username, password };
  }

  #check(): void {
    if (this.#closed) throw new Error("Tunnel closed");
  }

  /** Closes the device and its sockets (wiping its keys). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of this.#httpClients) {
      try {
        c.close();
      } catch {
        // closed by its user
      }
    }
    this.#httpClients.clear();
    this.#sharedHttpClient = null;
    if (this.#httpProxy) closeQuietly(this.#httpProxy.listener);
    this.stack.close();
    this.device.close();
  }
}
