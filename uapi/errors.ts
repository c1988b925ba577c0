// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * UAPI errors. A failed configuration step carries a **negative** errno that
 * goes straight into the `errno=N` reply line, exactly as wireguard-go's
 * `IPCError` (`ipc/uapi_unix.go`). `wg` prints `strerror(-N)`, so the sign
 * matters: `errno=-22` reads "Invalid argument", `errno=22` reads
 * "Unknown error -22" (the boringtun/gotatun bug).
 */

/** The errno values wireguard-go answers with (negative Linux errno, `ipc/uapi_unix.go`). */
export const ERRNO = {
  /** Reading the request failed (e.g. a line longer than 64 KiB). */
  EIO: -5,
  /** A set line without `=`. */
  EPROTO: -71,
  /** Any bad key or value. */
  EINVAL: -22,
  /** `listen_port` could not be bound or `fwmark` could not be applied. */
  EADDRINUSE: -98,
  /** Any other failure ("shouldn't happen" in wireguard-go). */
  ENOANO: -55,
} as const;

/** A UAPI failure: `errno` (negative) is what the reply carries, `message` is for the log. */
export class UapiError extends Error {
  /** Negative errno, one of {@link ERRNO}. */
  readonly errno: number;

  constructor(errno: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UapiError";
    this.errno = errno;
  }

  /**
   * wireguard-go's log shape: `IPC error -22: invalid UAPI device key: foo`,
   * with key-shaped text redacted ({@link redactKeys}).
   */
  override toString(): string {
    return `IPC error ${this.errno}: ${redactKeys(this.message)}`;
  }
}

/** 64 hex digits, or 43 base64 characters and `=`: the two ways a key is written. */
const KEY_SHAPED = /[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=/g;

/**
 * Replaces every key-shaped run in text headed for a log with `(redacted)`.
 * Error messages quote the offending request text (wireguard-go logs "failed
 * to parse line %q" verbatim), and a mistyped line, such as `private_key`
 * without its `=`, carries a real private or preshared key.
 */
export function redactKeys(text: string): string {
  return text.replace(KEY_SHAPED, "(redacted)");
}

/**
 * Maps any thrown value to a UapiError. Errors that already carry a negative
 * errno (UapiError, BindError) keep it; anything else becomes ENOANO, as
 * wireguard-go's "other UAPI error" branch in `IpcHandle`.
 */
export function toUapiError(err: unknown): UapiError {
  if (err instanceof UapiError) return err;
  if (err instanceof Error) {
    const errno = (err as { errno?: unknown }).errno;
    if (typeof errno === "number" && Number.isInteger(errno) && errno < 0) {
      return new UapiError(errno, err.message, { cause: err });
    }
    return new UapiError(ERRNO.ENOANO, `other UAPI error: ${err.message}`, { cause: err });
  }
  return new UapiError(ERRNO.ENOANO, `other UAPI error: ${String(err)}`);
}
