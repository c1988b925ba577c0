// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Wire messages (whitepaper §5.4, kernel `messages.h`): offsets and sizes of
 * the four message types, the type check that rejects anything of the wrong
 * size, and field accessors that read and write in place over one buffer.
 *
 * ```
 * initiation (148)  type:1 reserved:3 | sender:4 | ephemeral:32 | static:32+16 | timestamp:12+16 | mac1:16 | mac2:16
 * response   (92)   type:1 reserved:3 | sender:4 | receiver:4 | ephemeral:32 | empty:0+16 | mac1:16 | mac2:16
 * cookie     (64)   type:1 reserved:3 | receiver:4 | nonce:24 | cookie:16+16
 * transport  (≥32)  type:1 reserved:3 | receiver:4 | counter:8 | packet:n+16
 * ```
 * Integers are little-endian. The type is read as a little-endian u32 (as the
 * kernel and wireguard-go do), so non-zero reserved bytes make a message invalid.
 */
import {
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_KEEPALIVE_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
} from "./constants.ts";

/** Field offsets of the initiation message. */
export const Initiation = {
  sender: 4,
  ephemeral: 8,
  static: 40,
  timestamp: 88,
  mac1: 116,
  mac2: 132,
  size: MESSAGE_INITIATION_SIZE,
} as const;

/** Field offsets of the response message. */
export const Response = {
  sender: 4,
  receiver: 8,
  ephemeral: 12,
  empty: 44,
  mac1: 60,
  mac2: 76,
  size: MESSAGE_RESPONSE_SIZE,
} as const;

/** Field offsets of the cookie reply message. */
export const CookieReply = {
  receiver: 4,
  nonce: 8,
  cookie: 32,
  size: MESSAGE_COOKIE_REPLY_SIZE,
} as const;

/** Field offsets of the transport data message. */
export const Transport = {
  receiver: 4,
  counter: 8,
  content: 16,
} as const;

/**
 * The message type of `msg` when its type word and size are valid, else 0.
 * Initiation, response and cookie reply must have their exact size; transport
 * messages need at least a header and a tag.
 */
export function messageType(msg: Uint8Array): number {
  if (msg.length < 4 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return 0;
  switch (msg[0]) {
    case MESSAGE_INITIATION:
      return msg.length === MESSAGE_INITIATION_SIZE ? MESSAGE_INITIATION : 0;
    case MESSAGE_RESPONSE:
      return msg.length === MESSAGE_RESPONSE_SIZE ? MESSAGE_RESPONSE : 0;
    case MESSAGE_COOKIE_REPLY:
      return msg.length === MESSAGE_COOKIE_REPLY_SIZE ? MESSAGE_COOKIE_REPLY : 0;
    case MESSAGE_TRANSPORT:
      return msg.length >= MESSAGE_KEEPALIVE_SIZE ? MESSAGE_TRANSPORT : 0;
    default:
      return 0;
  }
}

/** Writes the type word (type byte, three zero bytes) at the start of `msg`. */
export function writeType(msg: Uint8Array, type: number): void {
  msg[0] = type;
  msg[1] = 0;
  msg[2] = 0;
  msg[3] = 0;
}

/** Reads a little-endian u32 at `offset`. */
export function readU32(msg: Uint8Array, offset: number): number {
  return (msg[offset] | (msg[offset + 1] << 8) | (msg[offset + 2] << 16) |
    (msg[offset + 3] << 24)) >>>
    0;
}

/** Writes a little-endian u32 at `offset`. */
export function writeU32(msg: Uint8Array, offset: number, value: number): void {
  msg[offset] = value & 0xff;
  msg[offset + 1] = (value >>> 8) & 0xff;
  msg[offset + 2] = (value >>> 16) & 0xff;
  msg[offset + 3] = (value >>> 24) & 0xff;
}

/** Returns a view of `length` bytes of `msg` at `offset` (no copy). */
export function field(msg: Uint8Array, offset: number, length: number): Uint8Array {
  return msg.subarray(offset, offset + length);
}
