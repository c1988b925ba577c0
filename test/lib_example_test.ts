// SPDX-License-Identifier: Apache-2.0
/**
 * The library as another project uses it: the `@example` of mod.ts and the
 * example in README's "Library use" section are written into a temporary
 * directory that has no deno.json, with `./mod.ts` replaced by this checkout's
 * mod.ts, and run there with `deno run --no-config` and no permissions. They
 * must resolve every import (the npm dependencies included), configure two
 * in-memory devices with UAPI text, and carry a packet from one to the other.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const MOD_URL = new URL("mod.ts", ROOT).href;

/** The first ```ts block of the mod.ts JSDoc, without the leading ` * `. */
function modExample(source: string): string {
  const lines = source.split("\n").map((l) => l.replace(/^ \* ?/, ""));
  return codeBlock(lines.join("\n"), "mod.ts");
}

/** The first ```ts block after `heading` in the README. */
function readmeExample(readme: string, heading: string): string {
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README has no "${heading}" section`);
  return codeBlock(readme.slice(at), "README");
}

function codeBlock(text: string, where: string): string {
  const start = text.indexOf("```ts\n");
  assert.ok(start >= 0, `${where} has no \`\`\`ts block`);
  const end = text.indexOf("\n```", start + 6);
  assert.ok(end > start, `${where}: unterminated code block`);
  return text.slice(start + 6, end + 1);
}

/** Runs `code` (importing "./mod.ts") from a fresh directory without deno.json. */
async function runOutside(code: string): Promise<{ code: number; out: string; err: string }> {
  assert.ok(code.includes(`"./mod.ts"`), "the example imports ./mod.ts");
  const dir = await Deno.makeTempDir({ prefix: "gotatun-lib-" });
  try {
    await Deno.writeTextFile(`${dir}/example.ts`, code.replace(`"./mod.ts"`, `"${MOD_URL}"`));
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-prompt", "example.ts"],
      cwd: dir,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function assertDelivered(r: { code: number; out: string; err: string }): void {
  assert.equal(r.code, 0, `example failed:\n${r.err}`);
  assert.match(r.out, /^B received 28 bytes$/m);
  // B learned A's endpoint from the handshake and counted the packet.
  assert.match(r.out, /^endpoint=192\.0\.2\.1:51820$/m);
  assert.match(r.out, /^last_handshake_time_sec=[1-9][0-9]*$/m);
  assert.match(r.out, /^rx_bytes=[1-9][0-9]*$/m);
}

Deno.test("mod.ts @example runs from a directory without deno.json", async () => {
  const example = modExample(await Deno.readTextFile(new URL("mod.ts", ROOT)));
  assertDelivered(await runOutside(example));
});

Deno.test("README's library example runs from a directory without deno.json", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  assertDelivered(await runOutside(readmeExample(readme, "## Library use")));
});

Deno.test("a bare @noble specifier in the sources would fail outside this repository", async () => {
  // The check above is only meaningful if the resolution really is config-free:
  // the same directory setup rejects what deno.json's import map alone resolves.
  const r = await runOutside(
    `import "./mod.ts";\nimport { blake2s } from "@noble/hashes/blake2.js";\nconsole.log(blake2s);\n`,
  );
  assert.notEqual(r.code, 0);
  assert.match(r.err, /@noble\/hashes\/blake2\.js/);
});
