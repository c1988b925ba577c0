// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of genkey/genpsk/pubkey without a daemon: output shape, clamping,
 * the world-readable warning, and pubkey's input rules.
 */
import assert from "node:assert/strict";
import { genkeyMain, type KeysContext, pubkeyMain } from "../../../cli/wg/keys.ts";
import { keyToBase64 } from "../../../cli/wg/encoding.ts";
import { publicKey } from "../../../src/crypto.ts";
import { memoryStdio } from "./_io.ts";

function context(stdin: string, stat: { isFile: boolean; mode: number } | null = null) {
  const { stdio, out, err } = memoryStdio();
  const data = new TextEncoder().encode(stdin);
  let off = 0;
  const ctx: KeysContext = {
    stdio,
    progName: "wg",
    // One byte per read, to exercise partial reads.
    stdin: {
      read(p: Uint8Array) {
        if (off >= data.length) return Promise.resolve(null);
        p[0] = data[off++];
        return Promise.resolve(1);
      },
    },
    stdoutStat: () => stat,
  };
  return { ctx, out, err };
}

Deno.test("genkeyMain() prints a clamped key, genpsk an unclamped one", async () => {
  const seenHigh = new Set<number>();
  for (let i = 0; i < 64; i++) {
    const { ctx, out, err } = context("");
    assert.equal(genkeyMain([i % 2 ? "genpsk" : "genkey"], ctx), 0);
    await ctx.stdio.flush();
    assert.equal(err.text(), "");
    const text = out.text();
    assert.match(text, /^[A-Za-z0-9+/]{43}=\n$/);
    const b = Uint8Array.fromBase64(text.trim());
    if (i % 2 === 0) {
      assert.equal(b[0] & 7, 0);
      assert.equal(b[31] & 0xc0, 0x40);
    } else {
      seenHigh.add(b[31] >> 6);
    }
  }
  assert.ok(seenHigh.size > 1, "genpsk output looks clamped");
});

Deno.test("genkeyMain() warns when stdout is a file others can read", async () => {
  for (
    const [stat, warn] of [
      [{ isFile: true, mode: 0o644 }, true],
      [{ isFile: true, mode: 0o640 }, false],
      [{ isFile: false, mode: 0o666 }, false],
      [null, false],
    ] as const
  ) {
    const { ctx, err } = context("", stat);
    genkeyMain(["genkey"], ctx);
    await ctx.stdio.flush();
    assert.equal(
      err.text(),
      warn
        ? "Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n"
        : "",
    );
  }
});

Deno.test("pubkeyMain() reads 44 characters, then only whitespace and NULs", async () => {
  const priv = new Uint8Array(32).fill(3);
  const b64 = keyToBase64(priv);
  const want = `${keyToBase64(publicKey(priv))}\n`;
  for (
    const [input, out, err] of [
      [b64, want, ""],
      [`${b64}\n\t \0\r\n`, want, ""],
      [`${b64}x`, "", "wg: Trailing characters found after key\n"],
      [b64.slice(0, 43), "", "wg: Key is not the correct length or format\n"],
      ["", "", "wg: Key is not the correct length or format\n"],
      [`${b64.slice(0, 42)}B=`, "", "wg: Key is not the correct length or format\n"],
      [` ${b64.slice(0, 43)}`, "", "wg: Key is not the correct length or format\n"],
    ]
  ) {
    const c = context(input);
    const code = await pubkeyMain(["pubkey"], c.ctx);
    await c.ctx.stdio.flush();
    assert.deepEqual(
      [code, c.out.text(), c.err.text()],
      [out ? 0 : 1, out, err],
      JSON.stringify(input),
    );
  }
});
