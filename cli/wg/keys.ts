// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * `wg genkey`, `wg genpsk` and `wg pubkey` (wireguard-tools `genkey.c`,
 * `pubkey.c`).
 *
 * genkey/genpsk print 32 random bytes in base64 (genkey clamps them into a
 * Curve25519 private key, RFC 7748 §5), warning on stderr when stdout is a
 * regular file that others can access, since the key would then be readable
 * by them. They do not refuse to print to a terminal.
 *
 * pubkey reads exactly 44 characters of base64 from stdin, then allows only
 * whitespace and NUL bytes up to end of input, and prints the public key.
 */
import { clampPrivateKey, publicKey } from "../../src/crypto.ts";
import { bytesToBstr, charIsSpace } from "./cstr.ts";
import { keyFromBase64, keyToBase64 } from "./encoding.ts";
import type { Stdio, WgReader } from "./stdio.ts";

/** What the key commands need. */
export interface KeysContext {
  stdio: Stdio;
  progName: string;
  stdin: WgReader;
  /**
   * fstat() of stdout: whether it is a regular file and its permission bits,
   * or null when unknown (then no warning).
   */
  stdoutStat(): { isFile: boolean; mode: number } | null;
}

/** genkey_main(): `argv[0]` is "genkey" or "genpsk". */
export function genkeyMain(argv: readonly string[], m: KeysContext): number {
  if (argv.length !== 1) {
    m.stdio.err(`Usage: ${m.progName} ${argv[0]}\n`);
    return 1;
  }
  const st = m.stdoutStat();
  if (st && st.isFile && (st.mode & 0o007) !== 0) {
    m.stdio.err(
      "Warning: writing to world accessible file.\nConsider setting the umask to 077 and trying again.\n",
    );
  }
  const key = crypto.getRandomValues(new Uint8Array(32));
  if (argv[0] === "genkey") clampPrivateKey(key);
  m.stdio.out(`${keyToBase64(key)}\n`);
  key.fill(0);
  return 0;
}

/** pubkey_main(): `argv[0]` is "pubkey". */
export async function pubkeyMain(argv: readonly string[], m: KeysContext): Promise<number> {
  if (argv.length !== 1) {
    m.stdio.err(`Usage: ${m.progName} ${argv[0]}\n`);
    return 1;
  }
  const head = new Uint8Array(44);
  let got = 0;
  let eof = false;
  const buf = new Uint8Array(4096);
  let rest = new Uint8Array(0);
  // fread(base64, 1, 44, stdin): wait for 44 bytes or the end of input.
  while (got < 44) {
    const n = await m.stdin.read(buf);
    if (n === null || n === 0) {
      eof = true;
      break;
    }
    const take = Math.min(n, 44 - got);
    head.set(buf.subarray(0, take), got);
    got += take;
    if (take < n) rest = buf.slice(take, n);
  }
  if (got !== 44) {
    m.stdio.err(`${m.progName}: Key is not the correct length or format\n`);
    return 1;
  }
  // Then getc() until EOF: whitespace and NUL bytes only.
  for (;;) {
    for (const c of rest) {
      if (c !== 0 && !charIsSpace(c)) {
        m.stdio.err(`${m.progName}: Trailing characters found after key\n`);
        return 1;
      }
    }
    if (eof) break;
    const n = await m.stdin.read(buf);
    if (n === null || n === 0) break;
    rest = buf.subarray(0, n);
  }
  const key = keyFromBase64(bytesToBstr(head));
  if (!key) {
    m.stdio.err(`${m.progName}: Key is not the correct length or format\n`);
    return 1;
  }
  m.stdio.out(`${keyToBase64(publicKey(key))}\n`);
  key.fill(0);
  return 0;
}
