// SPDX-License-Identifier: Apache-2.0
/**
 * Handshake cost per backend: create + consume initiation and response, and a
 * full session derivation, with the crypto backend in use (`GOTATUN_CRYPTO`).
 */
import {
  beginSession,
  consumeInitiation,
  consumeResponse,
  createInitiation,
  createResponse,
  Handshake,
  StaticIdentity,
} from "../../src/noise/handshake.ts";
import { Keypair } from "../../src/noise/keypair.ts";
import { generatePrivateKey } from "../../src/crypto.ts";
import { seededRng } from "../_util/fake_clock.ts";

const rng = seededRng(3);
const a = new StaticIdentity();
const b = new StaticIdentity();
a.set(generatePrivateKey(rng));
b.set(generatePrivateKey(rng));
const hsA = new Handshake(b.publicKey);
const hsB = new Handshake(a.publicKey);
hsA.precompute(a);
hsB.precompute(b);
const init = new Uint8Array(148);
const resp = new Uint8Array(92);
let now = 0;

Deno.bench("handshake: createInitiation", { group: "handshake" }, () => {
  createInitiation(init, hsA, a, 1, { rng, now, wall: Date.now() });
});

Deno.bench("handshake: full (initiation, response, both sessions)", {
  group: "handshake",
  baseline: true,
}, () => {
  now += 1000;
  createInitiation(init, hsA, a, 1, { rng, now, wall: 1e12 + now });
  const owner = consumeInitiation(init, b, () => ({ handshake: hsB }), { now });
  if (!owner) throw new Error("initiation rejected");
  createResponse(resp, hsB, 2, { rng });
  if (!consumeResponse(resp, hsA, a)) throw new Error("response rejected");
  beginSession(hsA, new Keypair(true, now, 1, 2));
  beginSession(hsB, new Keypair(false, now, 2, 1));
});
