// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Protocol constants from the WireGuard whitepaper §6.1 and the kernel's
 * `messages.h`, with wireguard-go's implementation limits where the whitepaper
 * is silent. Times are milliseconds.
 */

/** Initiator rekeys after this many messages on one keypair (2^60). */
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * Neither side uses a keypair for more than 2^64 − 2^13 − 1 messages. Counters
 * are kept exactly as a (hi, lo) pair of u32; this is the hi/lo split.
 */
export const REJECT_AFTER_MESSAGES_HI = 0xffffffff;
/** Low u32 of REJECT_AFTER_MESSAGES (2^64 − 2^13 − 1). */
export const REJECT_AFTER_MESSAGES_LO = 0xffffdfff;
/** The initiator rekeys when its current keypair is older than this. */
export const REKEY_AFTER_TIME = 120_000;
/** No keypair older than this is used to send or receive. */
export const REJECT_AFTER_TIME = 180_000;
/** Handshake attempts give up after this long (18 retries of REKEY_TIMEOUT). */
export const REKEY_ATTEMPT_TIME = 90_000;
/** Retransmit an unanswered initiation after this (plus jitter). */
export const REKEY_TIMEOUT = 5_000;
/** Passive keepalive delay after receiving data. */
export const KEEPALIVE_TIMEOUT = 10_000;
/** Retries after the first initiation: 20 initiations in all (wireguard-go MaxTimerHandshakes). */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT;
/** Random jitter added to handshake timers, 0–333 ms (kernel HZ/3). */
export const REKEY_TIMEOUT_JITTER_MAX = 334;
/** Cookie secrets rotate, and received cookies expire, after this long. */
export const COOKIE_REFRESH_TIME = 120_000;
/** At most one initiation per peer is accepted per this interval (wireguard-go). */
export const HANDSHAKE_INITATION_RATE = 20;
/** The device stays "under load" this long after the handshake queue was deep. */
export const UNDER_LOAD_AFTER_TIME = 1_000;
/** Bound of the handshake queue (wireguard-go QueueHandshakeSize). */
export const QUEUE_HANDSHAKE_SIZE = 1024;
/** Handshake queue depth at which the device is under load (kernel/wireguard-go: size / 8). */
export const UNDER_LOAD_QUEUE_DEPTH = QUEUE_HANDSHAKE_SIZE / 8;
/** Packets staged per peer while waiting for a handshake (wireguard-go QueueStagedSize). */
export const QUEUE_STAGED_SIZE = 128;
/** Keypairs older than this make the initiator rekey on receive: 180 − 10 − 5 s. */
export const REKEY_ON_RECEIVE_AGE = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT;
/** Key material is wiped this long after the last session was derived. */
export const ZERO_KEY_MATERIAL_AFTER = REJECT_AFTER_TIME * 3;

/** Most peers one device holds (wireguard-go MaxPeers). */
export const MAX_PEERS = 1 << 16;
/** Default interface MTU (1500 − 80). */
export const DEFAULT_MTU = 1420;
/** Largest MTU tracked (wireguard-go caps at 65535 − 32). */
export const MAX_MTU = 65535 - 32;

/** Message types (whitepaper §5.4). */
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;

/** Exact message sizes in bytes. */
export const MESSAGE_INITIATION_SIZE = 148;
export const MESSAGE_RESPONSE_SIZE = 92;
export const MESSAGE_COOKIE_REPLY_SIZE = 64;
export const MESSAGE_TRANSPORT_HEADER_SIZE = 16;
/** Poly1305 tag size. */
export const AEAD_TAG_SIZE = 16;
/** Smallest transport message: header + tag (an empty keepalive). */
export const MESSAGE_KEEPALIVE_SIZE = MESSAGE_TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE;
/** Transport plaintext is padded to a multiple of this. */
export const MESSAGE_PADDING_MULTIPLE = 16;
/** Largest UDP payload we accept or produce. */
export const MAX_MESSAGE_SIZE = 65535;
/** Largest inner packet: MAX_MESSAGE_SIZE minus transport overhead. */
export const MAX_CONTENT_SIZE = MAX_MESSAGE_SIZE - MESSAGE_KEEPALIVE_SIZE;

/** Key sizes. */
export const KEY_SIZE = 32;
export const COOKIE_SIZE = 16;
export const MAC_SIZE = 16;
