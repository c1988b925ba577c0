// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The UAPI socket directory, `/var/run/wireguard`, for both sides: the
 * daemon checks that nobody else can write to it before serving
 * `<dir>/<iface>.sock` there ({@link checkSocketDir}); the clients (`wg`,
 * `up`/`down`, `top`) list the sockets in it ({@link socketNames}) and probe
 * whether one is served ({@link probeSocket}). gotatun's own clients (`wg`,
 * `show`, `top`) take another directory from {@link SOCKET_DIR_ENV}; the
 * in-process tunnels (`proxy`, `forward` with `--uapi DIR`) serve theirs in a
 * directory of the user's ({@link prepareSocketDir}).
 */

/** The socket directory `wg` scans (`RUNSTATEDIR "/wireguard/"`). */
export const DEFAULT_SOCKET_DIR = "/var/run/wireguard";

/**
 * The environment variable naming the socket directory of gotatun's own
 * `wg`, `show` and `top`. wireguard-tools has no such variable: stock `wg`
 * always scans /var/run/wireguard (compiled in).
 */
export const SOCKET_DIR_ENV = "GOTATUN_SOCKET_DIR";

/** The socket directory the clients use: {@link SOCKET_DIR_ENV} when set and non-empty, else the default. */
export function socketDirFromEnv(env: Readonly<Record<string, string | undefined>>): string {
  const dir = env[SOCKET_DIR_ENV];
  return dir ? dir : DEFAULT_SOCKET_DIR;
}

/** Our effective uid, or null when it cannot be read (then only root may own the directory). */
function ownUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}

/**
 * Throws unless `dir` (symlinks followed) is a directory owned by root or by
 * us, and not writable by group or others. In such a directory another user
 * could plant a socket under our name for root's `wg` to talk to, or replace
 * ours.
 */
export function checkSocketDir(dir: string): void {
  const st = Deno.statSync(dir);
  if (!st.isDirectory) throw new Error(`Cannot use socket directory ${dir}: not a directory`);
  const uid = st.uid ?? -1;
  if (uid !== 0 && uid !== ownUid()) {
    throw new Error(`Cannot use socket directory ${dir}: owned by uid ${uid}, not root`);
  }
  const mode = (st.mode ?? 0) & 0o7777;
  if ((mode & 0o022) !== 0) {
    throw new Error(
      `Cannot use socket directory ${dir}: writable by group or others (mode ${
        mode.toString(8).padStart(4, "0")
      })`,
    );
  }
}

/**
 * Creates `dir` (and missing parents) mode 0700 when it does not exist,
 * then checks it as {@link checkSocketDir} does: a directory owned by us
 * (or root) that neither group nor others can write to. Throws with the
 * directory named.
 */
export function prepareSocketDir(dir: string): void {
  try {
    Deno.statSync(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new Error(`Cannot use socket directory ${dir}: ${(err as Error).message}`);
    }
    try {
      Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new Error(`Cannot create socket directory ${dir}: ${(err as Error).message}`);
    }
  }
  checkSocketDir(dir);
}

/**
 * socketNames() lists the interface names of `<dir>/<name>.sock` entries in
 * directory order (the file type is not checked: see {@link probeSocket}).
 * Throws what Deno.readDir throws (a missing directory is NotFound).
 */
export async function socketNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.length > 5 && e.name.endsWith(".sock")) names.push(e.name.slice(0, -5));
  }
  return names;
}

/**
 * What a socket path holds: `absent` (no file, or not a socket), `live` (a
 * connection was accepted), `refused` (its daemon is gone; `wg` unlinks such
 * a socket), or `failed` (the connect failed otherwise, e.g. EACCES). The
 * probe sends nothing, which a UAPI server takes as a closed connection.
 */
export type SocketState = "absent" | "live" | "refused" | "failed";

/** probeSocket() tells what `path` holds ({@link SocketState}). */
export async function probeSocket(path: string): Promise<SocketState> {
  try {
    if (!(await Deno.stat(path)).isSocket) return "absent";
  } catch {
    return "absent";
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return "live";
  } catch (e) {
    return e instanceof Deno.errors.ConnectionRefused ? "refused" : "failed";
  }
}
