// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The `wg` operations wg-quick performs, behind one interface
 * ({@link WgOps}) so `up`/`down`/`save` do not care how they are done.
 * Everything talks UAPI to `/var/run/wireguard/IFACE.sock` in this process
 * when that socket exists, which is always the case for our daemon and
 * wireguard-go: no `wg` is started.
 *
 * - `wg addconf IFACE FILE` (applying the stripped configuration) sends the
 *   request {@link ./validate.ts} built from the file with wg's own parser
 *   (cli/wg/); {@link applyConfig} is the one place that does it.
 * - Reads (`wg show IFACE endpoints|allowed-ips|fwmark`, `wg showconf`),
 *   `wg set IFACE fwmark N` and the interface check (`wg show interfaces`)
 *   are UAPI `get`/`set` requests.
 *
 * A kernel interface has no socket (it is configured over netlink, which
 * only the system's `wg` speaks): for it the `wg` program is run, and so it
 * is for `addconf` when `GOTATUN_QUICK_WG` names a wg(8) to use instead.
 *
 * `wg showconf` is reproduced from the UAPI `get` reply as wireguard-tools'
 * `showconf.c` prints it.
 */
import { uapiGet, uapiSet } from "../../uapi/client.ts";
import { DEFAULT_SOCKET_DIR } from "../../uapi/server.ts";
import type { WgDevice } from "../wg/containers.ts";
import { strerror } from "../wg/cstr.ts";
import { setDevice } from "../wg/ipc.ts";
import { defaultResolver } from "../wg/resolve.ts";
import { WgExit } from "../wg/stdio.ts";
import type { Runner } from "./runner.ts";

/** The configuration `addconf` applies: the file's wg part, and the request it parses into. */
export interface WgConfig {
  /** The text given to a `wg` program (kernel interface, GOTATUN_QUICK_WG). */
  readonly text: string;
  /** The request sent over UAPI. */
  readonly device: WgDevice;
}

/** The wg(8) operations wg-quick needs. Reads never throw; writes throw {@link WgError}. */
export interface WgOps {
  /** `wg addconf IFACE <file>`. */
  addconf(iface: string, config: WgConfig): Promise<void>;
  /** `wg show IFACE endpoints`, second column: `ip:port` / `[ip]:port`; [] on error. */
  endpoints(iface: string): Promise<string[]>;
  /** `wg show IFACE allowed-ips`: every prefix of every peer; [] on error. */
  allowedIps(iface: string): Promise<string[]>;
  /** `wg show IFACE fwmark` as a number: 0 when off, null when it cannot be read. */
  fwmark(iface: string): Promise<number | null>;
  /** `wg set IFACE fwmark MARK`. */
  setFwmark(iface: string, mark: number): Promise<void>;
  /** `wg showconf IFACE`. */
  showconf(iface: string): Promise<string>;
  /** Whether `wg show interfaces` would list `iface`. */
  isInterface(iface: string): Promise<boolean>;
}

/** A failed wg operation (the message says why, in wg's words where it has any). */
export class WgError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WgError";
  }
}

/** How long one UAPI request may take. */
const UAPI_TIMEOUT_MS = 10_000;
/**
 * A `wg addconf` program resolves endpoint host names itself and retries
 * for about a minute by default (WG_ENDPOINT_RESOLUTION_RETRIES, config.c),
 * so it gets more time than other tools.
 */
const ADDCONF_TIMEOUT_MS = 180_000;

/** The wg(8) program for a kernel interface: `GOTATUN_QUICK_WG` split at blanks, else `wg`. */
export function wgCommand(env: Readonly<Record<string, string | undefined>>): string[] {
  const custom = env.GOTATUN_QUICK_WG?.trim();
  return custom ? custom.split(/\s+/) : ["wg"];
}

/** Whether `GOTATUN_QUICK_WG` names a wg(8) program for `addconf`. */
function customWg(env: Readonly<Record<string, string | undefined>>): boolean {
  return (env.GOTATUN_QUICK_WG?.trim() ?? "") !== "";
}

/**
 * applyConfig() is wg-quick's `set_config`, `wg addconf IFACE` with the
 * stripped configuration: over UAPI when `useUapi`, else through the wg
 * program (given the text on stdin).
 */
export async function applyConfig(
  runner: Runner,
  iface: string,
  config: WgConfig,
  useUapi: boolean,
  socketDir: string = DEFAULT_SOCKET_DIR,
): Promise<void> {
  if (useUapi) {
    let ret: number;
    try {
      ret = await setDevice(
        { socketDir, resolver: defaultResolver() },
        { ...config.device, name: iface },
      );
    } catch (err) {
      // A daemon that closed the socket mid-request (wg dies of SIGPIPE then).
      if (!(err instanceof WgExit)) throw err;
      ret = -32;
    }
    if (ret !== 0) throw new WgError(`Unable to modify interface: ${strerror(-ret)}`);
    return;
  }
  const wg = wgCommand(runner.env);
  const r = await runner.run([...wg, "addconf", iface, "/dev/stdin"], {
    stdin: config.text,
    stdout: "forward",
    timeoutMs: ADDCONF_TIMEOUT_MS,
  });
  if (r.code !== 0) {
    throw new WgError(
      r.code === 127
        ? `\`${wg[0]}' not found: wg(8) from wireguard-tools is needed for a kernel interface`
        : `\`wg addconf ${iface}' failed`,
    );
  }
}

/** Standard base64 of a 64-character hex key, as wg prints keys. */
export function hexToBase64(hex: string): string {
  let bin = "";
  for (let i = 0; i + 1 < hex.length; i += 2) {
    bin += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
  }
  return btoa(bin);
}

/** One peer of a UAPI `get` reply. */
interface UapiPeer {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  keepalive: number;
  allowedIps: string[];
}

/** The parts of a UAPI `get` reply wg-quick looks at. */
export interface UapiDevice {
  privateKey: string | null;
  listenPort: number;
  fwmark: number;
  peers: UapiPeer[];
}

const ZERO_KEY = "0".repeat(64);

/** parseUapiGet() reads the `key=value` pairs of a `get` reply (as wg's ipc-uapi.h). */
export function parseUapiGet(kv: readonly (readonly [string, string])[]): UapiDevice {
  const dev: UapiDevice = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: UapiPeer | null = null;
  for (const [key, value] of kv) {
    if (key === "public_key") {
      peer = { publicKey: value, presharedKey: null, endpoint: null, keepalive: 0, allowedIps: [] };
      dev.peers.push(peer);
    } else if (peer === null) {
      if (key === "private_key") dev.privateKey = value;
      else if (key === "listen_port") dev.listenPort = Number(value) || 0;
      else if (key === "fwmark") dev.fwmark = Number(value) || 0;
    } else if (key === "preshared_key") {
      peer.presharedKey = value.toLowerCase() === ZERO_KEY ? null : value;
    } else if (key === "endpoint") {
      peer.endpoint = value === "" ? null : value;
    } else if (key === "persistent_keepalive_interval") {
      peer.keepalive = Number(value) || 0;
    } else if (key === "allowed_ip") {
      peer.allowedIps.push(value);
    }
  }
  return dev;
}

/** formatShowconf() prints a device as `wg showconf` (wireguard-tools showconf.c). */
export function formatShowconf(dev: UapiDevice): string {
  let s = "[Interface]\n";
  if (dev.listenPort) s += `ListenPort = ${dev.listenPort}\n`;
  if (dev.fwmark) s += `FwMark = 0x${dev.fwmark.toString(16)}\n`;
  if (dev.privateKey !== null) s += `PrivateKey = ${hexToBase64(dev.privateKey)}\n`;
  s += "\n";
  dev.peers.forEach((p, i) => {
    s += `[Peer]\nPublicKey = ${hexToBase64(p.publicKey)}\n`;
    if (p.presharedKey !== null) s += `PresharedKey = ${hexToBase64(p.presharedKey)}\n`;
    if (p.allowedIps.length > 0) s += `AllowedIPs = ${p.allowedIps.join(", ")}\n`;
    if (p.endpoint !== null) s += `Endpoint = ${p.endpoint}\n`;
    if (p.keepalive) s += `PersistentKeepalive = ${p.keepalive}\n`;
    if (i + 1 < dev.peers.length) s += "\n";
  });
  return s;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * wgOps() returns the {@link WgOps} that picks, per call, UAPI when
 * `DIR/IFACE.sock` exists and the `wg` program otherwise.
 */
export function wgOps(runner: Runner, socketDir: string = DEFAULT_SOCKET_DIR): WgOps {
  const opts = { dir: socketDir, timeoutMs: UAPI_TIMEOUT_MS };
  const wg = wgCommand(runner.env);
  const custom = customWg(runner.env);

  function hasSocket(iface: string): boolean {
    try {
      return Deno.statSync(`${socketDir}/${iface}.sock`).isSocket === true;
    } catch {
      return false;
    }
  }

  /** A UAPI get, with wg's complaint on stderr when it fails. */
  async function get(iface: string): Promise<UapiDevice | null> {
    try {
      return parseUapiGet(await uapiGet(iface, opts));
    } catch (err) {
      runner.output.err(`Unable to access interface: ${errText(err)}\n`);
      return null;
    }
  }

  /** `wg show IFACE FIELD` lines (tab-separated), [] when wg fails. */
  async function showField(iface: string, field: string): Promise<string[][]> {
    const r = await runner.run([...wg, "show", iface, field]);
    if (r.code !== 0) return [];
    return r.stdout.split("\n").filter((l) => l !== "").map((l) => l.split("\t"));
  }

  return {
    addconf: (iface, config) =>
      applyConfig(runner, iface, config, !custom && hasSocket(iface), socketDir),

    async endpoints(iface) {
      if (!hasSocket(iface)) {
        return (await showField(iface, "endpoints")).map((f) => f[1] ?? "").filter((e) =>
          e !== "" && e !== "(none)"
        );
      }
      const dev = await get(iface);
      if (dev === null) return [];
      return dev.peers.flatMap((p) => (p.endpoint === null ? [] : [p.endpoint]));
    },

    async allowedIps(iface) {
      if (!hasSocket(iface)) {
        return (await showField(iface, "allowed-ips")).flatMap((f) =>
          (f[1] ?? "").split(" ").filter((a) => a !== "" && a !== "(none)")
        );
      }
      const dev = await get(iface);
      if (dev === null) return [];
      return dev.peers.flatMap((p) => p.allowedIps);
    },

    async fwmark(iface) {
      if (!hasSocket(iface)) {
        const r = await runner.run([...wg, "show", iface, "fwmark"]);
        if (r.code !== 0) return null;
        const v = r.stdout.trim();
        if (v === "" || v === "off") return 0;
        const n = Number(v);
        return Number.isInteger(n) ? n : null;
      }
      const dev = await get(iface);
      return dev === null ? null : dev.fwmark;
    },

    async setFwmark(iface, mark) {
      if (!hasSocket(iface)) {
        const r = await runner.run([...wg, "set", iface, "fwmark", String(mark)], {
          stdout: "forward",
        });
        if (r.code !== 0) throw new WgError(`\`wg set ${iface} fwmark ${mark}' failed`);
        return;
      }
      try {
        await uapiSet(iface, [`fwmark=${mark}`], opts);
      } catch (err) {
        throw new WgError(`Unable to modify interface: ${errText(err)}`);
      }
    },

    async showconf(iface) {
      if (!hasSocket(iface)) {
        const r = await runner.run([...wg, "showconf", iface]);
        if (r.code !== 0) throw new WgError(`\`wg showconf ${iface}' failed`);
        return r.stdout;
      }
      const dev = await get(iface);
      if (dev === null) throw new WgError(`Unable to access interface ${iface}`);
      return formatShowconf(dev);
    },

    async isInterface(iface) {
      if (hasSocket(iface)) {
        // wg lists a socket only when a connect() succeeds (ipc-uapi-unix.h).
        try {
          const conn = await Deno.connect({
            transport: "unix",
            path: `${socketDir}/${iface}.sock`,
          });
          conn.close();
          return true;
        } catch {
          // stale socket: fall through to the kernel check
        }
      }
      // A kernel interface: `ip link show type wireguard` lists exactly those.
      const r = await runner.run(["ip", "-o", "link", "show", "type", "wireguard"], {
        stderr: "discard",
      });
      if (r.code !== 0) return false;
      return r.stdout.split("\n").some((l) => {
        const m = /^\d+: ([^:@ ]+)[:@]/.exec(l);
        return m !== null && m[1] === iface;
      });
    },
  };
}
