// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of syncconf's request rewriting (setconf.c sync_conf).
 */
import assert from "node:assert/strict";
import { syncDevice } from "../../../cli/wg/setconf.ts";
import {
  newDevice,
  newPeer,
  WGDEVICE_REPLACE_PEERS,
  WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_HAS_PRESHARED_KEY,
  WGPEER_REMOVE_ME,
} from "../../../cli/wg/containers.ts";

function peer(id: number, flags = 0) {
  const p = newPeer();
  p.publicKey.fill(id);
  p.flags = flags;
  return p;
}

Deno.test("syncDevice() removes running peers the file lacks, first and in descending key order", () => {
  const file = newDevice();
  file.flags = WGDEVICE_REPLACE_PEERS;
  file.peers.push(peer(5), peer(2));
  const runtime = newDevice();
  runtime.peers.push(peer(1), peer(5), peer(9), peer(3));
  syncDevice(file, runtime);
  assert.equal(file.flags & WGDEVICE_REPLACE_PEERS, 0);
  assert.deepEqual(
    file.peers.map((p) => [p.publicKey[0], p.flags & WGPEER_REMOVE_ME]),
    [[9, WGPEER_REMOVE_ME], [3, WGPEER_REMOVE_ME], [1, WGPEER_REMOVE_ME], [5, 0], [2, 0]],
  );
});

Deno.test("syncDevice() clears a preshared key and keepalive the file no longer sets", () => {
  const file = newDevice();
  file.peers.push(peer(4), peer(6, WGPEER_HAS_PRESHARED_KEY));
  const runtime = newDevice();
  const r4 = peer(4, WGPEER_HAS_PRESHARED_KEY);
  r4.persistentKeepalive = 25;
  const r6 = peer(6, WGPEER_HAS_PRESHARED_KEY);
  runtime.peers.push(r4, r6);
  syncDevice(file, runtime);
  const [p4, p6] = file.peers;
  assert.ok(p4.flags & WGPEER_HAS_PRESHARED_KEY);
  assert.deepEqual(p4.presharedKey, new Uint8Array(32));
  assert.ok(p4.flags & WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL);
  assert.equal(p4.persistentKeepalive, 0);
  assert.equal(p6.flags & WGPEER_HAS_PERSISTENT_KEEPALIVE_INTERVAL, 0);
});

Deno.test("syncDevice() leaves the request alone when either side has no peers", () => {
  const file = newDevice();
  file.flags = WGDEVICE_REPLACE_PEERS;
  syncDevice(file, newDevice());
  assert.equal(file.flags, WGDEVICE_REPLACE_PEERS);
  file.peers.push(peer(1));
  syncDevice(file, newDevice());
  assert.equal(file.flags, WGDEVICE_REPLACE_PEERS);
});
