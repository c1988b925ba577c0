// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * In-memory stdio for unit tests of the `wg` modules: writers that record
 * bytes, a Stdio over them, and contexts for config parsing without network.
 */
import type { ConfigContext } from "../../../cli/wg/config.ts";
import { fallbackResolver } from "../../../cli/wg/resolve.ts";
import { Stdio } from "../../../cli/wg/stdio.ts";

/** A writer that records what it is given. */
export class MemoryWriter {
  chunks: Uint8Array[] = [];
  readonly #terminal: boolean;
  /** `log` receives "out"/"err" markers in write order when shared. */
  readonly #log: string[] | null;
  readonly #tag: string;

  constructor(opts: { terminal?: boolean; log?: string[]; tag?: string } = {}) {
    this.#terminal = opts.terminal ?? false;
    this.#log = opts.log ?? null;
    this.#tag = opts.tag ?? "";
  }

  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p.slice());
    this.#log?.push(`${this.#tag}:${new TextDecoder().decode(p)}`);
    return Promise.resolve(p.length);
  }

  isTerminal(): boolean {
    return this.#terminal;
  }

  text(): string {
    return this.chunks.map((c) => new TextDecoder().decode(c)).join("");
  }
}

/** A Stdio over two memory writers. */
export function memoryStdio(
  terminal = false,
): { stdio: Stdio; out: MemoryWriter; err: MemoryWriter } {
  const out = new MemoryWriter({ terminal });
  const err = new MemoryWriter();
  return { stdio: new Stdio(out, err), out, err };
}

/** A config context with the TypeScript resolver and instant sleeps. */
export function configContext(
  env: Record<string, string> = {},
): { ctx: ConfigContext; out: MemoryWriter; err: MemoryWriter; sleeps: number[] } {
  const { stdio, out, err } = memoryStdio();
  const sleeps: number[] = [];
  const ctx: ConfigContext = {
    stdio,
    env,
    resolver: fallbackResolver(),
    sleep(ms) {
      sleeps.push(ms);
      return Promise.resolve();
    },
  };
  return { ctx, out, err, sleeps };
}
