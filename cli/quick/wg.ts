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
 * The requests, and the text of `wg show` fields and `wg showconf`, are
 * those of our wg(8) (cli/wg/ipc.ts, show.ts, showconf.ts).
 */
import { DEFAULT_SOCKET_DIR, probeSocket } from "../../uapi/socket_dir.ts";
import { newDevice, type WgDevice, WGDEVICE_HAS_FWMARK } from "../wg/containers.ts";
import { EPIPE, strerror } from "../wg/cstr.ts";
import { inetNtop } from "../wg/inet.ts";
import { type IpcContext, setDevice, userspaceGetDevice, userspaceSetDevice } from "../wg/ipc.ts";
import { defaultResolver, formatSockAddr } from "../wg/resolve.ts";
import { formatConfig } from "../wg/showconf.ts";
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
    const ctx = { socketDir, resolver: defaultResolver() };
    await set(() => setDevice(ctx, { ...config.device, name: iface }));
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

/** Runs a UAPI set; throws {@link WgError} with wg's message when it fails. */
async function set(request: () => Promise<number>): Promise<void> {
  let ret: number;
  try {
    ret = await request();
  } catch (err) {
    // A daemon that closed the socket mid-request (wg dies of SIGPIPE then).
    if (!(err instanceof WgExit)) throw err;
    ret = -EPIPE;
  }
  if (ret !== 0) throw new WgError(`Unable to modify interface: ${strerror(-ret)}`);
}

/**
 * wgOps() returns the {@link WgOps} that picks, per call, UAPI when
 * `DIR/IFACE.sock` exists and the `wg` program otherwise.
 */
export function wgOps(runner: Runner, socketDir: string = DEFAULT_SOCKET_DIR): WgOps {
  const resolver = defaultResolver();
  // A stale socket is left for the next daemon on that name to replace (uapi/server.ts).
  const ctx: IpcContext = { socketDir, resolver, timeoutMs: UAPI_TIMEOUT_MS, keepStale: true };
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
  async function get(iface: string): Promise<WgDevice | null> {
    const { ret, device } = await userspaceGetDevice(ctx, iface);
    if (device === null) runner.output.err(`Unable to access interface: ${strerror(-ret)}\n`);
    return device;
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
      return dev.peers.flatMap((p) => p.endpoint ? [formatSockAddr(p.endpoint, resolver)] : []);
    },

    async allowedIps(iface) {
      if (!hasSocket(iface)) {
        return (await showField(iface, "allowed-ips")).flatMap((f) =>
          (f[1] ?? "").split(" ").filter((a) => a !== "" && a !== "(none)")
        );
      }
      const dev = await get(iface);
      if (dev === null) return [];
      return dev.peers.flatMap((p) => p.allowedIps.map((ip) => `${inetNtop(ip.addr)}/${ip.cidr}`));
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
      const dev = newDevice();
      dev.name = iface;
      dev.fwmark = mark;
      dev.flags = WGDEVICE_HAS_FWMARK;
      await set(() => userspaceSetDevice(ctx, dev));
    },

    async showconf(iface) {
      if (!hasSocket(iface)) {
        const r = await runner.run([...wg, "showconf", iface]);
        if (r.code !== 0) throw new WgError(`\`wg showconf ${iface}' failed`);
        return r.stdout;
      }
      const dev = await get(iface);
      if (dev === null) throw new WgError(`Unable to access interface ${iface}`);
      return formatConfig(dev, resolver);
    },

    async isInterface(iface) {
      // A served socket; a stale one falls through to the kernel check.
      if ((await probeSocket(`${socketDir}/${iface}.sock`)) === "live") return true;
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
