// SPDX-License-Identifier: Apache-2.0
// The portable Tunnel (no FFI: Deno's own UDP sockets and the noble crypto),
// forced with --deny-ffi: the cases in _deno_bind_cases.ts need
// Deno.listenDatagram, so they run in a child `deno test --unstable-net
// --deny-ffi`; this test passes only if every case there does.
import assert from "node:assert/strict";
import { denoTestChild } from "../_util/proc.ts";

Deno.test("Tunnel without FFI: the cases of _deno_bind_cases.ts pass under --deny-ffi", async () => {
  const cases = new URL("./_deno_bind_cases.ts", import.meta.url).pathname;
  const r = await denoTestChild([
    "--allow-net",
    "--allow-read",
    "--allow-env",
    "--deny-ffi",
    "--unstable-net",
    "--no-prompt",
    cases,
  ]);
  assert.equal(r.code, 0, r.text);
  assert.equal(r.passed, 2, r.text);
});
