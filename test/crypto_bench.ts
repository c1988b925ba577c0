// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Cost of the façade's hot operations per backend: a keepalive-sized and an
 * MTU-sized transport AEAD seal and open (64 B and 1420 B of plaintext), the
 * 148-byte HASH of a handshake initiation (what MAC1 and the chaining hash
 * walk over), and one DH. `openssl speed -evp chacha20-poly1305 -bytes 1420`
 * gives OpenSSL's own streaming figure to compare the AEAD groups with.
 *
 * Each operation is one Deno.bench group with a bench per backend, so
 * `deno bench` prints the backends side by side. Add a backend by adding it to
 * {@link BACKENDS}; the first entry is the baseline. `GOTATUN_BENCH_BACKENDS`
 * (comma-separated names) restricts the run.
 */
import {
  aeadOpen,
  aeadSeal,
  type CryptoBackend,
  dh,
  generatePrivateKey,
  hash,
  publicKey,
  setCryptoBackend,
} from "../src/crypto.ts";
import { loadLibcryptoBackend } from "../src/crypto/libcrypto.ts";
import { nobleBackend } from "../src/crypto/noble.ts";

/** Backends by name; the first is the baseline of every group. */
const libcrypto = loadLibcryptoBackend();
const BACKENDS: ReadonlyMap<string, CryptoBackend> = new Map([
  ["noble", nobleBackend],
  ...(libcrypto ? [["libcrypto", libcrypto] as const] : []),
]);

function selectedBackends(): [string, CryptoBackend][] {
  const wanted = Deno.env.get("GOTATUN_BENCH_BACKENDS");
  const all = [...BACKENDS];
  if (!wanted) return all;
  const names = new Set(wanted.split(",").map((s) => s.trim()));
  return all.filter(([name]) => names.has(name));
}

function fill(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

const key = fill(32, 1);
const ad = new Uint8Array(0);
const counter = { lo: 0, hi: 0 };
const pt64 = fill(64, 2);
const out64 = new Uint8Array(64 + 16);
const pt1420 = fill(1420, 3);
const out1420 = new Uint8Array(1420 + 16);
/** Sealed once under {@link openCounter}; every open bench opens it again. */
const openCounter = { lo: 7, hi: 0 };
const sealed64 = new Uint8Array(64 + 16);
const sealed1420 = new Uint8Array(1420 + 16);
setCryptoBackend(nobleBackend);
aeadSeal(sealed64, key, openCounter, pt64, ad);
aeadSeal(sealed1420, key, openCounter, pt1420, ad);
const OPEN_CASES = [
  { size: 64, sealed: sealed64, opened: new Uint8Array(64) },
  { size: 1420, sealed: sealed1420, opened: new Uint8Array(1420) },
];
const msg148 = fill(148, 4);
const digest = new Uint8Array(32);
const privateKey = generatePrivateKey((b) => b.set(fill(b.length, 5)));
const peerPublic = publicKey(generatePrivateKey((b) => b.set(fill(b.length, 6))));
const shared = new Uint8Array(32);

const selected = selectedBackends();

for (const [index, [name, backend]] of selected.entries()) {
  const baseline = index === 0;
  // The façade reads one module-level backend; each bench selects its own
  // before its timed loop (an assignment, negligible beside the work).
  Deno.bench({
    name: `${name} aeadSeal 64 B`,
    group: "aeadSeal 64 B",
    baseline,
    fn(b) {
      setCryptoBackend(backend);
      b.start();
      counter.lo = (counter.lo + 1) >>> 0;
      aeadSeal(out64, key, counter, pt64, ad);
      b.end();
    },
  });
  Deno.bench({
    name: `${name} aeadSeal 1420 B`,
    group: "aeadSeal 1420 B",
    baseline,
    n: 20000,
    fn(b) {
      setCryptoBackend(backend);
      b.start();
      counter.lo = (counter.lo + 1) >>> 0;
      aeadSeal(out1420, key, counter, pt1420, ad);
      b.end();
    },
  });
  for (const { size, sealed, opened } of OPEN_CASES) {
    Deno.bench({
      name: `${name} aeadOpen ${size} B`,
      group: `aeadOpen ${size} B`,
      baseline,
      n: 20000,
      fn(b) {
        setCryptoBackend(backend);
        b.start();
        if (!aeadOpen(opened, key, openCounter, sealed, ad)) {
          throw new Error(`${name}: open failed`);
        }
        b.end();
      },
    });
  }
  Deno.bench({
    name: `${name} hash 148 B`,
    group: "hash 148 B",
    baseline,
    fn(b) {
      setCryptoBackend(backend);
      b.start();
      hash(digest, msg148);
      b.end();
    },
  });
  Deno.bench({
    name: `${name} dh`,
    group: "dh",
    baseline,
    n: 500,
    fn(b) {
      setCryptoBackend(backend);
      b.start();
      dh(shared, privateKey, peerPublic);
      b.end();
    },
  });
}
