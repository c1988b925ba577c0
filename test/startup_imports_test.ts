// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * No static `node:` import in the program's sources: the bundle is one file,
 * so any such import loads Deno's Node compatibility layer at start-up in
 * every gotatun process and in each of the daemon's two isolates (about
 * 5 MiB of resident memory each). A `node:` module is imported dynamically
 * where it is needed (node:net for an inherited UAPI socket), and Deno's
 * globals (`process`, `setImmediate`) load only when used.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

function* sources(dir: URL): Generator<URL> {
  for (const e of Deno.readDirSync(dir)) {
    const u = new URL(e.name + (e.isDirectory ? "/" : ""), dir);
    if (e.isDirectory) yield* sources(u);
    else if (e.name.endsWith(".ts")) yield u;
  }
}

Deno.test("no static node: import in mod.ts, src/, uapi/ or cli/", () => {
  const found: string[] = [];
  const files = [new URL("mod.ts", ROOT)];
  for (const d of ["src/", "uapi/", "cli/"]) files.push(...sources(new URL(d, ROOT)));
  for (const f of files) {
    const text = Deno.readTextFileSync(f);
    for (const m of text.matchAll(/^(?:import|export)\s[^;]*?from\s+["']node:[^"']+["']/gms)) {
      found.push(`${f.pathname.slice(ROOT.pathname.length)}: ${m[0].replace(/\s+/g, " ")}`);
    }
  }
  assert.deepEqual(found, []);
});
