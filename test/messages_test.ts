// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests for the wire message layout (whitepaper §5.4, kernel `messages.h`):
 * field offsets that add up to the exact message sizes, the type check that
 * accepts only exact sizes and zero reserved bytes, and little-endian u32
 * accessors.
 */
import assert from "node:assert/strict";
import {
  AEAD_TAG_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_COOKIE_REPLY_SIZE,
  MESSAGE_INITIATION,
  MESSAGE_INITIATION_SIZE,
  MESSAGE_KEEPALIVE_SIZE,
  MESSAGE_RESPONSE,
  MESSAGE_RESPONSE_SIZE,
  MESSAGE_TRANSPORT,
  MESSAGE_TRANSPORT_HEADER_SIZE,
} from "../src/constants.ts";
import {
  CookieReply,
  field,
  Initiation,
  messageType,
  readU32,
  Response,
  Transport,
  writeType,
  writeU32,
} from "../src/messages.ts";

/** A message of `size` bytes with a valid type word for `type`. */
function message(type: number, size: number): Uint8Array {
  const msg = new Uint8Array(size);
  writeType(msg, type);
  return msg;
}

Deno.test("message sizes match whitepaper §5.4", () => {
  assert.equal(MESSAGE_INITIATION_SIZE, 148);
  assert.equal(MESSAGE_RESPONSE_SIZE, 92);
  assert.equal(MESSAGE_COOKIE_REPLY_SIZE, 64);
  assert.equal(MESSAGE_TRANSPORT_HEADER_SIZE, 16);
  assert.equal(MESSAGE_KEEPALIVE_SIZE, 32);
  assert.deepEqual(
    [MESSAGE_INITIATION, MESSAGE_RESPONSE, MESSAGE_COOKIE_REPLY, MESSAGE_TRANSPORT],
    [1, 2, 3, 4],
  );
});

Deno.test("Initiation offsets add up to 148 bytes (whitepaper §5.4.2)", () => {
  // type:1 reserved:3 | sender:4 | ephemeral:32 | static:32+16 | timestamp:12+16 | mac1:16 | mac2:16
  assert.equal(Initiation.sender, 4);
  assert.equal(Initiation.ephemeral, Initiation.sender + 4);
  assert.equal(Initiation.static, Initiation.ephemeral + 32);
  assert.equal(Initiation.timestamp, Initiation.static + 32 + AEAD_TAG_SIZE);
  assert.equal(Initiation.mac1, Initiation.timestamp + 12 + AEAD_TAG_SIZE);
  assert.equal(Initiation.mac2, Initiation.mac1 + 16);
  assert.equal(Initiation.size, Initiation.mac2 + 16);
  assert.equal(Initiation.size, 148);
  assert.deepEqual(
    [
      Initiation.ephemeral,
      Initiation.static,
      Initiation.timestamp,
      Initiation.mac1,
      Initiation.mac2,
    ],
    [8, 40, 88, 116, 132],
  );
});

Deno.test("Response offsets add up to 92 bytes (whitepaper §5.4.3)", () => {
  // type:1 reserved:3 | sender:4 | receiver:4 | ephemeral:32 | empty:0+16 | mac1:16 | mac2:16
  assert.equal(Response.sender, 4);
  assert.equal(Response.receiver, Response.sender + 4);
  assert.equal(Response.ephemeral, Response.receiver + 4);
  assert.equal(Response.empty, Response.ephemeral + 32);
  assert.equal(Response.mac1, Response.empty + AEAD_TAG_SIZE);
  assert.equal(Response.mac2, Response.mac1 + 16);
  assert.equal(Response.size, Response.mac2 + 16);
  assert.equal(Response.size, 92);
  assert.deepEqual(
    [Response.receiver, Response.ephemeral, Response.empty, Response.mac1, Response.mac2],
    [8, 12, 44, 60, 76],
  );
});

Deno.test("CookieReply offsets add up to 64 bytes (whitepaper §5.4.7)", () => {
  // type:1 reserved:3 | receiver:4 | nonce:24 | cookie:16+16
  assert.equal(CookieReply.receiver, 4);
  assert.equal(CookieReply.nonce, CookieReply.receiver + 4);
  assert.equal(CookieReply.cookie, CookieReply.nonce + 24);
  assert.equal(CookieReply.size, CookieReply.cookie + 16 + AEAD_TAG_SIZE);
  assert.equal(CookieReply.size, 64);
});

Deno.test("Transport offsets: header is 16 bytes (whitepaper §5.4.6)", () => {
  // type:1 reserved:3 | receiver:4 | counter:8 | packet:n+16
  assert.equal(Transport.receiver, 4);
  assert.equal(Transport.counter, Transport.receiver + 4);
  assert.equal(Transport.content, Transport.counter + 8);
  assert.equal(Transport.content, MESSAGE_TRANSPORT_HEADER_SIZE);
  assert.equal(MESSAGE_KEEPALIVE_SIZE, Transport.content + AEAD_TAG_SIZE);
});

Deno.test("mac1 and mac2 are the last 32 bytes of both handshake messages", () => {
  assert.equal(Initiation.mac1, Initiation.size - 32);
  assert.equal(Initiation.mac2, Initiation.size - 16);
  assert.equal(Response.mac1, Response.size - 32);
  assert.equal(Response.mac2, Response.size - 16);
});

Deno.test("messageType() accepts exactly the valid sizes", async (t) => {
  const cases: [string, number, number, number][] = [
    ["initiation 148", MESSAGE_INITIATION, 148, MESSAGE_INITIATION],
    ["initiation 147", MESSAGE_INITIATION, 147, 0],
    ["initiation 149", MESSAGE_INITIATION, 149, 0],
    ["initiation 92", MESSAGE_INITIATION, 92, 0],
    ["response 92", MESSAGE_RESPONSE, 92, MESSAGE_RESPONSE],
    ["response 91", MESSAGE_RESPONSE, 91, 0],
    ["response 93", MESSAGE_RESPONSE, 93, 0],
    ["response 148", MESSAGE_RESPONSE, 148, 0],
    ["cookie 64", MESSAGE_COOKIE_REPLY, 64, MESSAGE_COOKIE_REPLY],
    ["cookie 63", MESSAGE_COOKIE_REPLY, 63, 0],
    ["cookie 65", MESSAGE_COOKIE_REPLY, 65, 0],
    ["cookie 92", MESSAGE_COOKIE_REPLY, 92, 0],
    ["transport 31", MESSAGE_TRANSPORT, 31, 0],
    ["transport 32 (keepalive)", MESSAGE_TRANSPORT, 32, MESSAGE_TRANSPORT],
    ["transport 33", MESSAGE_TRANSPORT, 33, MESSAGE_TRANSPORT],
    ["transport 148", MESSAGE_TRANSPORT, 148, MESSAGE_TRANSPORT],
    ["transport 1452", MESSAGE_TRANSPORT, 1452, MESSAGE_TRANSPORT],
    ["transport 65535", MESSAGE_TRANSPORT, 65535, MESSAGE_TRANSPORT],
    ["transport 16 (header only)", MESSAGE_TRANSPORT, 16, 0],
    ["transport 4", MESSAGE_TRANSPORT, 4, 0],
  ];
  for (const [name, type, size, want] of cases) {
    await t.step(name, () => {
      assert.equal(messageType(message(type, size)), want);
    });
  }
});

Deno.test("messageType() rejects unknown types", () => {
  for (const type of [0, 5, 6, 0x7f, 0x80, 0xff]) {
    for (const size of [32, 64, 92, 148, 200]) {
      assert.equal(messageType(message(type, size)), 0, `type ${type} size ${size}`);
    }
  }
});

Deno.test("messageType() rejects non-zero reserved bytes", () => {
  const sizes: [number, number][] = [
    [MESSAGE_INITIATION, 148],
    [MESSAGE_RESPONSE, 92],
    [MESSAGE_COOKIE_REPLY, 64],
    [MESSAGE_TRANSPORT, 32],
    [MESSAGE_TRANSPORT, 100],
  ];
  for (const [type, size] of sizes) {
    assert.equal(messageType(message(type, size)), type);
    for (let i = 1; i <= 3; i++) {
      for (const v of [0x01, 0x80, 0xff]) {
        const msg = message(type, size);
        msg[i] = v;
        assert.equal(messageType(msg), 0, `type ${type} reserved byte ${i} = ${v}`);
      }
    }
  }
});

Deno.test("messageType() rejects empty and short input", () => {
  assert.equal(messageType(new Uint8Array(0)), 0);
  for (let n = 1; n < 4; n++) {
    for (const type of [1, 2, 3, 4]) {
      const msg = new Uint8Array(n);
      msg[0] = type;
      assert.equal(messageType(msg), 0, `${n} bytes of type ${type}`);
    }
  }
});

Deno.test("messageType() reads a view with a non-zero byteOffset", () => {
  const backing = new Uint8Array(10 + 148 + 10).fill(0xaa);
  const view = backing.subarray(10, 10 + 148);
  writeType(view, MESSAGE_INITIATION);
  assert.equal(messageType(view), MESSAGE_INITIATION);
  assert.equal(backing[9], 0xaa);
  assert.deepEqual(Array.from(backing.subarray(10, 14)), [1, 0, 0, 0]);
});

Deno.test("writeType() writes the type byte and zeroes the reserved bytes", () => {
  const msg = new Uint8Array(8).fill(0xff);
  writeType(msg, MESSAGE_RESPONSE);
  assert.deepEqual(Array.from(msg), [2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
});

Deno.test("writeU32() writes little-endian", () => {
  const msg = new Uint8Array(8);
  writeU32(msg, 2, 0x04030201);
  assert.deepEqual(Array.from(msg), [0, 0, 1, 2, 3, 4, 0, 0]);
  writeU32(msg, 4, 0xffffffff);
  assert.deepEqual(Array.from(msg), [0, 0, 1, 2, 0xff, 0xff, 0xff, 0xff]);
  writeU32(msg, 0, 0);
  assert.deepEqual(Array.from(msg), [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  // Agrees with DataView little-endian.
  const dv = new DataView(msg.buffer);
  writeU32(msg, 1, 0xdeadbeef);
  assert.equal(dv.getUint32(1, true), 0xdeadbeef);
});

Deno.test("readU32() reads little-endian and unsigned", () => {
  const msg = new Uint8Array([
    0x78,
    0x56,
    0x34,
    0x12,
    0xff,
    0xff,
    0xff,
    0xff,
    0x00,
    0x00,
    0x00,
    0x80,
  ]);
  assert.equal(readU32(msg, 0), 0x12345678);
  assert.equal(readU32(msg, 4), 0xffffffff);
  assert.equal(readU32(msg, 8), 0x80000000);
  assert.equal(readU32(msg, 1), 0xff123456);
  for (const v of [0, 1, 0x7fffffff, 0x80000000, 0xaabbccdd, 0xffffffff]) {
    const b = new Uint8Array(4);
    writeU32(b, 0, v);
    assert.equal(readU32(b, 0), v);
    assert.equal(new DataView(b.buffer).getUint32(0, true), v);
  }
});

Deno.test("field() returns a view, not a copy", () => {
  const msg = new Uint8Array(148);
  const eph = field(msg, Initiation.ephemeral, 32);
  assert.equal(eph.length, 32);
  assert.equal(eph.buffer, msg.buffer);
  assert.equal(eph.byteOffset, Initiation.ephemeral);
  eph.fill(7);
  assert.equal(msg[Initiation.ephemeral - 1], 0);
  assert.equal(msg[Initiation.ephemeral], 7);
  assert.equal(msg[Initiation.ephemeral + 31], 7);
  assert.equal(msg[Initiation.static], 0);
});
