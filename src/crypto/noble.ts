// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The portable crypto backend: pure TypeScript from @noble (audited, no native
 * code). It is the reference the native backend is checked against.
 *
 * The imports name their npm packages with versions (the same as deno.json's
 * import map, which `deno install` and the tests use) so that mod.ts resolves
 * from a project that has no deno.json of ours.
 */
// deno-lint-ignore-file no-import-prefix
import { chacha20poly1305, xchacha20poly1305 } from "npm:@noble/ciphers@2.4.0/chacha.js";
import { x25519 } from "npm:@noble/curves@2.4.0/ed25519.js";
import { blake2s } from "npm:@noble/hashes@2.4.0/blake2.js";
import type { CryptoBackend } from "./backend.ts";

function overlaps(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength &&
    b.byteOffset < a.byteOffset + a.byteLength;
}

/** The @noble backend. */
export const nobleBackend: CryptoBackend = {
  name: "noble",
  blake2s(out, inputs, key) {
    const h = blake2s.create(key ? { key, dkLen: out.length } : { dkLen: out.length });
    for (const input of inputs) h.update(input);
    out.set(h.digest());
  },
  seal(out, key, nonce, plaintext, ad) {
    const ct = chacha20poly1305(key, nonce, ad).encrypt(
      overlaps(out, plaintext) ? plaintext.slice() : plaintext,
    );
    out.set(ct);
  },
  open(out, key, nonce, ciphertext, ad) {
    try {
      out.set(chacha20poly1305(key, nonce, ad).decrypt(ciphertext));
      return true;
    } catch {
      return false;
    }
  },
  xseal(out, key, nonce, plaintext, ad) {
    out.set(xchacha20poly1305(key, nonce, ad).encrypt(plaintext));
  },
  xopen(out, key, nonce, ciphertext, ad) {
    try {
      out.set(xchacha20poly1305(key, nonce, ad).decrypt(ciphertext));
      return true;
    } catch {
      return false;
    }
  },
  x25519(out, scalar, point) {
    try {
      out.set(x25519.scalarMult(scalar, point));
    } catch {
      // noble throws when the shared point is the identity (all-zero output).
      out.fill(0);
    }
  },
};
