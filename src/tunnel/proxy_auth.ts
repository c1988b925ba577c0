// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Usernames and passwords for the proxies: {@link parseAuthFile} reads the
 * `--auth` file (`user:password` lines), {@link ProxyCredentials.check}
 * compares in time independent of the bytes compared, and the two wire forms
 * are parsed here: SOCKS5 username/password sub-negotiation (RFC 1929,
 * {@link readSocksUserPass}) and HTTP `Proxy-Authorization: Basic`
 * (RFC 7617, {@link parseBasicCredentials}). All pure.
 */

/** RFC 1929: ULEN and PLEN are one byte, 1 to 255. */
export const MAX_CREDENTIAL_BYTES = 255;
/** The most entries an auth file may hold. */
export const MAX_AUTH_ENTRIES = 1024;

/** RFC 1929 §2: the sub-negotiation's version byte. */
export const USERPASS_VERSION = 1;

/** An auth file that cannot be used; the message names the file and line. */
export class AuthFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthFileError";
  }
}

/** One credential padded to a fixed size: length byte, then the bytes, then zeros. */
function padded(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + MAX_CREDENTIAL_BYTES);
  if (b.length > MAX_CREDENTIAL_BYTES) return out.fill(0xff); // never equal to a valid entry
  out[0] = b.length;
  out.set(b, 1);
  return out;
}

/** The users a proxy accepts; see {@link parseAuthFile}. */
export class ProxyCredentials {
  readonly #users: Uint8Array[] = [];
  readonly #passwords: Uint8Array[] = [];

  /** Credentials from byte strings of 1 to 255 bytes (throws RangeError otherwise). */
  constructor(entries: readonly { user: Uint8Array; password: Uint8Array }[]) {
    for (const e of entries) {
      for (const v of [e.user, e.password]) {
        if (v.length < 1 || v.length > MAX_CREDENTIAL_BYTES) {
          throw new RangeError(`credentials must be 1 to ${MAX_CREDENTIAL_BYTES} bytes`);
        }
      }
      this.#users.push(padded(e.user));
      this.#passwords.push(padded(e.password));
    }
  }

  /** How many users. */
  get size(): number {
    return this.#users.length;
  }

  /**
   * True when `user` and `password` match an entry. Every entry is compared
   * in full, so the time taken depends on the number of entries only, not on
   * which bytes matched (as far as the JIT allows: no data-dependent branch).
   */
  check(user: Uint8Array, password: Uint8Array): boolean {
    const u = padded(user), p = padded(password);
    let found = 0;
    for (let i = 0; i < this.#users.length; i++) {
      const eu = this.#users[i], ep = this.#passwords[i];
      let diff = 0;
      for (let j = 0; j < u.length; j++) diff |= (eu[j] ^ u[j]) | (ep[j] ^ p[j]);
      found |= (diff - 1) >>> 31; // 1 when diff is 0
    }
    return found === 1;
  }
}

/**
 * Parses an auth file: one `user:password` per line, the user up to the
 * first `:` (so it cannot contain one), the password the rest of the line
 * (it may contain `:`; spaces are kept). Blank lines and lines starting with
 * `#` are skipped; a trailing CR is dropped. Each part is 1 to 255 bytes of
 * UTF-8 (RFC 1929). Throws {@link AuthFileError} naming `name:line`.
 */
export function parseAuthFile(text: string, name: string): ProxyCredentials {
  const enc = new TextEncoder();
  const entries: { user: Uint8Array; password: Uint8Array }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) continue;
    const where = `${name}:${i + 1}`;
    const colon = line.indexOf(":");
    if (colon < 0) throw new AuthFileError(`${where}: expected user:password`);
    const user = enc.encode(line.slice(0, colon));
    const password = enc.encode(line.slice(colon + 1));
    if (user.length < 1 || user.length > MAX_CREDENTIAL_BYTES) {
      throw new AuthFileError(`${where}: the user name must be 1 to 255 bytes`);
    }
    if (password.length < 1 || password.length > MAX_CREDENTIAL_BYTES) {
      throw new AuthFileError(`${where}: the password must be 1 to 255 bytes`);
    }
    if ([...line].some((c) => c < " " || c === "\x7f")) {
      throw new AuthFileError(`${where}: control characters are not allowed`);
    }
    if (entries.length === MAX_AUTH_ENTRIES) {
      throw new AuthFileError(`${where}: more than ${MAX_AUTH_ENTRIES} users`);
    }
    entries.push({ user, password });
  }
  if (entries.length === 0) throw new AuthFileError(`${name}: no user:password line`);
  return new ProxyCredentials(entries);
}

/** A parsed RFC 1929 request: `length` is the bytes it took. */
export interface SocksUserPass {
  user: Uint8Array;
  password: Uint8Array;
  length: number;
}

/**
 * Parses `VER ULEN UNAME PLEN PASSWD` (RFC 1929 §2) at the start of `b`;
 * null when more bytes are needed (at most 513 in all). Throws on a version
 * other than 1 or an empty user name or password.
 */
export function readSocksUserPass(b: Uint8Array): SocksUserPass | null {
  if (b.length < 2) return null;
  if (b[0] !== USERPASS_VERSION) throw new Error(`username/password version ${b[0]}`);
  const ulen = b[1];
  if (ulen === 0) throw new Error("empty user name");
  if (b.length < 3 + ulen) return null;
  const plen = b[2 + ulen];
  if (plen === 0) throw new Error("empty password");
  const length = 3 + ulen + plen;
  if (b.length < length) return null;
  return { user: b.slice(2, 2 + ulen), password: b.slice(3 + ulen, length), length };
}

/** RFC 1929 §2 status reply: 0 success, anything else failure (the server then closes). */
export function socksUserPassReply(ok: boolean): Uint8Array {
  return new Uint8Array([USERPASS_VERSION, ok ? 0 : 1]);
}

/**
 * The user and password of a `Proxy-Authorization` value `Basic <base64>`
 * (RFC 7617 §2; the scheme is case-insensitive); null when it is another
 * scheme or malformed. The user ends at the first `:`.
 */
export function parseBasicCredentials(
  value: string,
): { user: Uint8Array; password: Uint8Array } | null {
  const m = /^basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(value);
  if (!m || m[1].length > 4 * 171) return null; // 171*3 ≥ 255+1+255 bytes
  let raw: string;
  try {
    raw = atob(m[1]);
  } catch {
    return null;
  }
  const b = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  const colon = b.indexOf(0x3a);
  if (colon < 0) return null;
  return { user: b.slice(0, colon), password: b.slice(colon + 1) };
}
