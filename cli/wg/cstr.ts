// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The C-library behaviour the `wg` reimplementation depends on, in
 * TypeScript: byte strings, the `ctype.h` of wireguard-tools (ASCII only, no
 * locale), `strtoul`/`strtoull` with glibc's whitespace, sign and overflow
 * rules, `strerror` texts, and glibc's `%.2f` rounding.
 *
 * **Byte strings.** `wg` handles every argument, file line and reply as bytes
 * (`char *`): it truncates interface names to 15 bytes, prints a stray byte of
 * a key file with `%c`, and stops C strings at NUL. The `wg` modules therefore
 * keep text as "byte strings": JS strings whose code units are all ≤ 0xff,
 * one per byte. {@link bstr} makes one from ordinary (UTF-8) text, and
 * {@link bstrBytes} turns one back into the exact bytes to write.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** bstr() is `text` encoded as UTF-8, one string code unit per byte. */
export function bstr(text: string): string {
  // Pure ASCII (the common case) is already its own byte string.
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  return bytesToBstr(encoder.encode(text));
}

/**
 * "x-user-defined" decodes every byte to one code unit (0x80–0xff become
 * U+F780–U+F7FF), natively and fast; mapping those back gives a byte string.
 */
const byteDecoder = new TextDecoder("x-user-defined");

/** bytesToBstr() is `bytes` as a byte string. */
export function bytesToBstr(bytes: Uint8Array): string {
  const text = byteDecoder.decode(bytes);
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  return text.replace(/[\uf780-\uf7ff]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xf700));
}

/** bstrBytes() is the bytes a byte string stands for. */
export function bstrBytes(s: string): Uint8Array {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return encoder.encode(s);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** bstrText() decodes a byte string as UTF-8 (for Deno APIs that take paths). */
export function bstrText(s: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return decoder.decode(bstrBytes(s));
}

/** cstring() is `s` up to its first NUL, as C string functions see it. */
export function cstring(s: string): string {
  const i = s.indexOf("\0");
  return i < 0 ? s : s.slice(0, i);
}

/** wireguard-tools `char_is_space`: \t \n \v \f \r and space; never a byte ≥ 0x80. */
export function charIsSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13);
}

/** wireguard-tools `char_is_digit`: ASCII 0–9. */
export function charIsDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** `strcasecmp(a, b) == 0` in the C locale (ASCII case folding only). */
export function strcaseEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  return strncaseEqual(a, b, a.length);
}

/** `strncasecmp(a, b, n) == 0` in the C locale, for byte strings. */
export function strncaseEqual(a: string, b: string, n: number): boolean {
  for (let i = 0; i < n; i++) {
    const x = i < a.length ? a.charCodeAt(i) : 0;
    const y = i < b.length ? b.charCodeAt(i) : 0;
    if (foldCase(x) !== foldCase(y)) return false;
    if (x === 0) return true;
  }
  return true;
}

function foldCase(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

/** The result of {@link strtoul}: the value and the index where parsing stopped. */
export interface StrtoulResult {
  /** The converted value, already wrapped/saturated like glibc (0 ≤ value < 2^bits). */
  value: bigint;
  /** Index of the first unparsed character (`*endptr`); 0 when nothing was converted. */
  end: number;
}

const ULONG_MAX = (1n << 64n) - 1n;

/**
 * glibc `strtoul`/`strtoull` (64-bit `unsigned long`) on a byte string: leading
 * whitespace, an optional sign, then digits in `base` (10, 16 or 0 for C
 * prefixes). Overflow saturates to ULONG_MAX; a `-` negates modulo 2^64. When
 * no digit follows, `end` is 0 (nothing converted).
 */
export function strtoul(s: string, base: 0 | 8 | 10 | 16): StrtoulResult {
  let i = 0;
  while (i < s.length && charIsSpace(s.charCodeAt(i))) i++;
  let negative = false;
  if (s[i] === "+" || s[i] === "-") {
    negative = s[i] === "-";
    i++;
  }
  let b = base;
  if ((b === 0 || b === 16) && s[i] === "0" && (s[i + 1] === "x" || s[i + 1] === "X")) {
    // "0x" only counts as a prefix when a hex digit follows; otherwise the
    // "0" alone is the number and parsing stops at the "x".
    if (digitValue(s.charCodeAt(i + 2)) < 16) {
      i += 2;
      b = 16;
    } else if (b === 0) {
      b = 8;
    }
  } else if (b === 0) {
    b = s[i] === "0" ? 8 : 10;
  }
  const start = i;
  // Plain numbers until they could lose precision, then BigInt (BigInt is slow).
  let small = 0;
  for (; i < s.length && i - start < 13; i++) {
    const d = digitValue(s.charCodeAt(i));
    if (d >= b) break;
    small = small * b + d;
  }
  let value = BigInt(small);
  let overflow = false;
  const big = BigInt(b);
  for (; i < s.length; i++) {
    const d = digitValue(s.charCodeAt(i));
    if (d >= b) break;
    if (!overflow) {
      value = value * big + BigInt(d);
      if (value > ULONG_MAX) overflow = true;
    }
  }
  if (i === start) return { value: 0n, end: 0 };
  if (overflow) return { value: ULONG_MAX, end: i };
  if (negative && value !== 0n) value = (1n << 64n) - value;
  return { value, end: i };
}

function digitValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 122) return c - 87;
  if (c >= 65 && c <= 90) return c - 55;
  return 99;
}

/** glibc's `strerror` texts for the Linux errno values. */
const ERRNO_TEXT: readonly string[] = [
  "Success",
  "Operation not permitted",
  "No such file or directory",
  "No such process",
  "Interrupted system call",
  "Input/output error",
  "No such device or address",
  "Argument list too long",
  "Exec format error",
  "Bad file descriptor",
  "No child processes",
  "Resource temporarily unavailable",
  "Cannot allocate memory",
  "Permission denied",
  "Bad address",
  "Block device required",
  "Device or resource busy",
  "File exists",
  "Invalid cross-device link",
  "No such device",
  "Not a directory",
  "Is a directory",
  "Invalid argument",
  "Too many open files in system",
  "Too many open files",
  "Inappropriate ioctl for device",
  "Text file busy",
  "File too large",
  "No space left on device",
  "Illegal seek",
  "Read-only file system",
  "Too many links",
  "Broken pipe",
  "Numerical argument out of domain",
  "Numerical result out of range",
  "Resource deadlock avoided",
  "File name too long",
  "No locks available",
  "Function not implemented",
  "Directory not empty",
  "Too many levels of symbolic links",
  "",
  "No message of desired type",
  "Identifier removed",
  "Channel number out of range",
  "Level 2 not synchronized",
  "Level 3 halted",
  "Level 3 reset",
  "Link number out of range",
  "Protocol driver not attached",
  "No CSI structure available",
  "Level 2 halted",
  "Invalid exchange",
  "Invalid request descriptor",
  "Exchange full",
  "No anode",
  "Invalid request code",
  "Invalid slot",
  "",
  "Bad font file format",
  "Device not a stream",
  "No data available",
  "Timer expired",
  "Out of streams resources",
  "Machine is not on the network",
  "Package not installed",
  "Object is remote",
  "Link has been severed",
  "Advertise error",
  "Srmount error",
  "Communication error on send",
  "Protocol error",
  "Multihop attempted",
  "RFS specific error",
  "Bad message",
  "Value too large for defined data type",
  "Name not unique on network",
  "File descriptor in bad state",
  "Remote address changed",
  "Can not access a needed shared library",
  "Accessing a corrupted shared library",
  ".lib section in a.out corrupted",
  "Attempting to link in too many shared libraries",
  "Cannot exec a shared library directly",
  "Invalid or incomplete multibyte or wide character",
  "Interrupted system call should be restarted",
  "Streams pipe error",
  "Too many users",
  "Socket operation on non-socket",
  "Destination address required",
  "Message too long",
  "Protocol wrong type for socket",
  "Protocol not available",
  "Protocol not supported",
  "Socket type not supported",
  "Operation not supported",
  "Protocol family not supported",
  "Address family not supported by protocol",
  "Address already in use",
  "Cannot assign requested address",
  "Network is down",
  "Network is unreachable",
  "Network dropped connection on reset",
  "Software caused connection abort",
  "Connection reset by peer",
  "No buffer space available",
  "Transport endpoint is already connected",
  "Transport endpoint is not connected",
  "Cannot send after transport endpoint shutdown",
  "Too many references: cannot splice",
  "Connection timed out",
  "Connection refused",
  "Host is down",
  "No route to host",
  "Operation already in progress",
  "Operation now in progress",
  "Stale file handle",
  "Structure needs cleaning",
  "Not a XENIX named type file",
  "No XENIX semaphores available",
  "Is a named type file",
  "Remote I/O error",
  "Disk quota exceeded",
  "No medium found",
  "Wrong medium type",
  "Operation canceled",
  "Required key not available",
  "Key has expired",
  "Key has been revoked",
  "Key was rejected by service",
  "Owner died",
  "State not recoverable",
  "Operation not possible due to RF-kill",
  "Memory page has hardware error",
];

/** glibc `strerror(code)`: the text, or "Unknown error N" (negative values included). */
export function strerror(code: number): string {
  const text = code >= 0 && code < ERRNO_TEXT.length ? ERRNO_TEXT[code] : "";
  return text === "" ? `Unknown error ${code}` : text;
}

/** The errno values `wg` reports. */
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EBADF = 9;
export const ENOMEM = 12;
export const EACCES = 13;
export const ENODEV = 19;
export const EISDIR = 21;
export const EINVAL = 22;
export const EPIPE = 32;
export const ENAMETOOLONG = 36;
export const EPROTO = 71;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const ENETUNREACH = 101;
export const ECONNRESET = 104;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;

const CODE_ERRNO: Record<string, number> = {
  EPERM,
  ENOENT,
  EIO,
  EBADF,
  ENOMEM,
  EACCES,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV,
  ENOTDIR: 20,
  EISDIR,
  EINVAL,
  EMFILE: 24,
  EPIPE,
  ENAMETOOLONG,
  ELOOP: 40,
  EPROTO,
  ENOTSOCK: 88,
  EPROTONOSUPPORT,
  EOPNOTSUPP,
  EADDRINUSE: 98,
  ENETUNREACH,
  ECONNABORTED: 103,
  ECONNRESET,
  ENOTCONN: 107,
  ETIMEDOUT,
  ECONNREFUSED,
};

/**
 * errnoOf() is the errno behind an error thrown by a Deno API: the
 * "(os error N)" of its message, else its `code`, else its class; EIO when
 * nothing tells.
 */
export function errnoOf(e: unknown): number {
  if (e instanceof Error) {
    const m = e.message.match(/\(os error (\d+)\)/);
    if (m) return Number(m[1]);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code in CODE_ERRNO) return CODE_ERRNO[code];
    if (e instanceof Deno.errors.NotFound) return ENOENT;
    if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable) {
      return EACCES;
    }
    if (e instanceof Deno.errors.ConnectionRefused) return ECONNREFUSED;
    if (e instanceof Deno.errors.ConnectionReset) return ECONNRESET;
    if (e instanceof Deno.errors.BrokenPipe) return EPIPE;
    if (e instanceof Deno.errors.IsADirectory) return EISDIR;
    if (e instanceof Deno.errors.NotADirectory) return CODE_ERRNO.ENOTDIR;
  }
  return EIO;
}

/**
 * cFixed() formats a double like glibc `printf("%.*f", digits, x)`: from the
 * exact binary value, rounding half to even (JavaScript's toFixed rounds
 * exact ties up, so 1.125 would print "1.13" where glibc prints "1.12").
 */
export function cFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? "inf" : x < 0 ? "-inf" : "nan";
  const negative = x < 0 || Object.is(x, -0);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const exponentBits = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent: number;
  if (exponentBits === 0) {
    exponent = -1074;
  } else {
    mantissa |= 1n << 52n;
    exponent = exponentBits - 1075;
  }
  // |x| = mantissa × 2^exponent; scale by 10^digits and round to an integer.
  const scale = 10n ** BigInt(digits);
  let q: bigint;
  if (exponent >= 0) {
    q = (mantissa << BigInt(exponent)) * scale;
  } else {
    const den = 1n << BigInt(-exponent);
    const num = mantissa * scale;
    q = num / den;
    const twice = (num % den) * 2n;
    if (twice > den || (twice === den && (q & 1n) === 1n)) q += 1n;
  }
  let text = q.toString();
  if (digits > 0) {
    text = text.padStart(digits + 1, "0");
    text = `${text.slice(0, -digits)}.${text.slice(-digits)}`;
  }
  return negative ? `-${text}` : text;
}
