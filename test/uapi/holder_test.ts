// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * uapi/holder.ts: the "unix socket in use" message names the process that
 * listens on the socket (found with SO_PEERCRED) and says that the socket
 * directory is shared by all network namespaces. The listener here is this
 * process, in this namespace; the other-namespace case is exercised as root
 * by test/cli/quick/main_test.ts.
 */
import assert from "node:assert/strict";
import { commandOf, socketHolder, socketInUseMessage } from "../../uapi/holder.ts";
import { UapiServer } from "../../uapi/server.ts";
import { FakeHandler } from "./_fake_handler.ts";

const handler = new FakeHandler();

Deno.test("commandOf() shortens a deno command line to the script and its arguments", () => {
  assert.equal(
    commandOf(
      "/usr/lib/node_modules/deno/deno\0run\0--no-prompt\0--allow-all\0" +
        "--v8-flags=--max-semi-space-size=4\0--no-config\0/usr/local/bin/gotatun\0ux0\0",
    ),
    "gotatun ux0",
  );
  assert.equal(
    commandOf("deno\0run\0-A\0--config\0/src/deno.json\0/src/cli/main.ts\0wg1\0"),
    "main.ts wg1",
  );
  assert.equal(commandOf("/usr/bin/wireguard-go\0wg0\0"), "wireguard-go wg0");
  assert.equal(commandOf(""), null);
  assert.equal(commandOf(`x\0${"a".repeat(100)}\0`)!.length, 80);
});

Deno.test("socketHolder() is the listening process; nothing listening gives null", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtholder-" });
  try {
    const path = `${dir}/wg9.sock`;
    assert.equal(socketHolder(path), null);
    const listener = Deno.listen({ transport: "unix", path });
    try {
      assert.deepEqual(socketHolder(path), { pid: Deno.pid, uid: Deno.uid() });
    } finally {
      listener.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second UapiServer on a live socket is refused with the holder named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gtholder-" });
  // The directory must not be writable by others (UapiServer.listen checks).
  await Deno.chmod(dir, 0o755);
  try {
    const server = await UapiServer.listen({ iface: "wg9", handle: handler, dir });
    try {
      const path = `${dir}/wg9.sock`;
      const message = socketInUseMessage(path);
      assert.ok(
        message.startsWith(`unix socket in use: ${path} is served by process ${Deno.pid} (`),
      );
      assert.match(message, / in this network namespace; /);
      assert.match(message, new RegExp(`${dir} is shared by all network namespaces`));
      await assert.rejects(
        UapiServer.listen({ iface: "wg9", handle: handler, dir }),
        (err: Error) => err.message === socketInUseMessage(path),
      );
    } finally {
      server.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
