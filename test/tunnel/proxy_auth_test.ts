// SPDX-License-Identifier: Apache-2.0
// Proxy credentials: the --auth file, the comparison, RFC 1929 and Basic parsing.
import assert from "node:assert/strict";
import {
  AuthFileError,
  parseAuthFile,
  parseBasicCredentials,
  ProxyCredentials,
  readSocksUserPass,
  socksUserPassReply,
} from "../../src/tunnel/proxy_auth.ts";

const enc = new TextEncoder();
const b = (s: string) => enc.encode(s);

Deno.test("parseAuthFile() reads user:password lines, comments and CRLF", () => {
  const creds = parseAuthFile("# users\nalice:s3cret\r\n\nbob:pa:ss word\n", "auth.txt");
  assert.equal(creds.size, 2);
  assert.ok(creds.check(b("alice"), b("s3cret")));
  assert.ok(creds.check(b("bob"), b("pa:ss word")), "the password is the rest of the line");
  assert.ok(!creds.check(b("alice"), b("s3cret\r")));
  assert.ok(!creds.check(b("alice"), b("pa:ss word")), "another user's password");
  assert.ok(!creds.check(b("bob"), b("pa:ss wor")), "a prefix");
  assert.ok(!creds.check(b("alic"), b("s3cret")));
  assert.ok(!creds.check(b(""), b("")));
  assert.ok(!creds.check(b("alice"), new Uint8Array(300)), "over-long input never matches");
  // UTF-8 names survive.
  assert.ok(parseAuthFile("jöhn:pässwörd", "f").check(b("jöhn"), b("pässwörd")));
});

Deno.test("parseAuthFile() names the file and line of each mistake", () => {
  const cases: [string, RegExp][] = [
    ["alice:x\nnocolon\n", /^f:2: expected user:password$/],
    [":password", /^f:1: the user name must be 1 to 255 bytes$/],
    ["alice:", /^f:1: the password must be 1 to 255 bytes$/],
    [`alice:${"x".repeat(256)}`, /^f:1: the password must be 1 to 255 bytes$/],
    ["alice:a\tb", /^f:1: control characters/],
    ["# only a comment\n\n", /^f: no user:password line$/],
    ["a:b\n".repeat(1025), /^f:1025: more than 1024 users$/],
  ];
  for (const [text, want] of cases) {
    assert.throws(() => parseAuthFile(text, "f"), (e: Error) => {
      assert.ok(e instanceof AuthFileError);
      assert.match(e.message, want);
      return true;
    });
  }
  assert.throws(() => new ProxyCredentials([{ user: b(""), password: b("x") }]), RangeError);
});

Deno.test("readSocksUserPass() parses RFC 1929 §2 and waits for whole messages", () => {
  const msg = new Uint8Array([1, 5, ...b("alice"), 3, ...b("pwd"), 0xee]);
  for (let n = 0; n < 11; n++) assert.equal(readSocksUserPass(msg.subarray(0, n)), null, `${n}`);
  const r = readSocksUserPass(msg)!;
  assert.deepEqual([r.user, r.password, r.length], [b("alice"), b("pwd"), 11]);
  assert.throws(() => readSocksUserPass(new Uint8Array([5, 1, 0x61, 1, 0x62])), /version 5/);
  assert.throws(() => readSocksUserPass(new Uint8Array([1, 0, 1, 0x62])), /empty user/);
  assert.throws(() => readSocksUserPass(new Uint8Array([1, 1, 0x61, 0])), /empty password/);
  assert.deepEqual(socksUserPassReply(true), new Uint8Array([1, 0]));
  assert.deepEqual(socksUserPassReply(false), new Uint8Array([1, 1]));
});

Deno.test("parseBasicCredentials() takes RFC 7617 Basic only", () => {
  const v = `Basic ${btoa("alice:pa:ss")}`;
  assert.deepEqual(parseBasicCredentials(v), { user: b("alice"), password: b("pa:ss") });
  assert.deepEqual(parseBasicCredentials(`bAsIc  ${btoa("a:")}`), {
    user: b("a"),
    password: b(""),
  });
  assert.equal(parseBasicCredentials(`Bearer ${btoa("a:b")}`), null);
  assert.equal(parseBasicCredentials(`Basic ${btoa("nocolon")}`), null);
  assert.equal(parseBasicCredentials("Basic !!!"), null);
  assert.equal(parseBasicCredentials("Basic a"), null, "invalid base64 length");
  assert.equal(parseBasicCredentials(`Basic ${"A".repeat(5000)}`), null, "bounded");
});
