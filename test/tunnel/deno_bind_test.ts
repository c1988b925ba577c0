// SPDX-License-Identifier: Apache-2.0
// The portable Tunnel (no FFI: Deno's own UDP sockets and the noble crypto),
// forced with --deny-ffi: the cases in _deno_bind_cases.ts need
// Deno.listenDatagram, so they run in a child `deno test --unstable-net
// --deny-ffi`; this test passes only if every case there does.
import assert from "node:assert/strict";

Deno.test("Tunnel without FFI: the cases of _deno_bind_cases.ts pass under --deny-ffi", async () => {
  const cases = new URL("./_deno_bind_cases.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "--allow-net",
      "--allow-read",
      "--allow-env",
      "--deny-ffi",
      "--unstable-net",
      "--no-prompt",
      cases,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const m = /ok \| (\d+) passed \| 0 failed/.exec(text);
  assert.ok(m && Number(m[1]) === 2, text);
});
