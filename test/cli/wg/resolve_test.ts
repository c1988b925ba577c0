// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Tests of name resolution: the pure-TypeScript fallback against glibc's
 * getaddrinfo (through FFI) on numeric hosts and on ports, and endpoint
 * printing.
 */
import assert from "node:assert/strict";
import {
  EAI_AGAIN,
  EAI_NONAME,
  EAI_SERVICE,
  fallbackResolver,
  formatSockAddr,
  libcResolver,
  resolveHost,
} from "../../../cli/wg/resolve.ts";
import { inetPton6 } from "../../../cli/wg/inet.ts";
import { ignoreUnless } from "../../_util/needs.ts";

/** Numeric hosts and ports only: no DNS traffic from tests. */
const CASES: [string | null, string][] = [
  ["127.1", "5"],
  ["0x7f.1", "6"],
  ["010.0.0.1", "7"],
  ["4294967295", "20"],
  ["1.2.3.4", "domain"],
  ["1.2.3.4", "70000"],
  ["1.2.3.4", "-0"],
  ["1.2.3.4", "-1"],
  ["1.2.3.4", "4294967296"],
  ["1.2.3.4", "2147483648"],
  ["1.2.3.4", " 80"],
  ["1.2.3.4", "+81"],
  ["1.2.3.4", "0x10"],
  ["1.2.3.4", "nosuchservice"],
  ["::1", "8"],
  ["fe80::1%lo", "9"],
  ["fe80::1%1", "10"],
  ["fe80::1%99", "11"],
  ["fe80::1%4294967296", "11"],
  ["ff02::1%lo", "12"],
  ["ff01::1%lo", "12"],
  ["::1%lo", "13"],
  ["::1%7", "13"],
  ["::ffff:1.2.3.4", "14"],
  [null, "51820"],
  [null, "domain"],
  [null, "65536"],
  [null, "abc"],
];

Deno.test({
  name: "fallbackResolver() agrees with glibc getaddrinfo on numeric hosts and ports",
  ignore: ignoreUnless("test/cli/wg/resolve_test.ts", { ffi: true }),
  fn() {
    const libc = libcResolver();
    assert.ok(libc);
    const ours = fallbackResolver();
    for (const [host, service] of CASES) {
      const want = libc.getaddrinfo(host, service);
      const got = ours.getaddrinfo(host, service);
      const label = `${host}:${service}`;
      assert.equal(got.ok, want.ok, label);
      if (!want.ok || !got.ok) {
        assert.equal((got as { code: number }).code, (want as { code: number }).code, label);
        continue;
      }
      assert.ok(want.addr && got.addr);
      assert.equal(got.addr.port, want.addr.port, label);
      if (host !== null) {
        assert.equal(got.addr.family, want.addr.family, label);
        assert.deepEqual(got.addr.addr, want.addr.addr, label);
        assert.equal(got.addr.scopeId, want.addr.scopeId, label);
      }
    }
  },
});

Deno.test("fallbackResolver() reports service errors before looking at the host", () => {
  const r = fallbackResolver().getaddrinfo("no-such-host.invalid", "nosuchservice");
  assert.deepEqual(r, { ok: false, code: EAI_SERVICE, errno: 0 });
});

Deno.test("fallbackResolver() needs a prefetch for names, and rejects impossible names", async () => {
  const r = fallbackResolver();
  const before = r.getaddrinfo("localhost", "1");
  assert.equal(before.ok ? 0 : before.code, EAI_AGAIN);
  const bad = await resolveHost(r, " 1.2.3.4", "1");
  assert.equal(bad.ok ? 0 : bad.code, EAI_NONAME);
  const hosts = await Deno.readTextFile("/etc/hosts").catch(() => "");
  if (/^\s*127\.0\.0\.1\s.*\blocalhost\b/m.test(hosts)) {
    const lh = await resolveHost(r, "localhost", "1");
    assert.ok(lh.ok && lh.addr);
  }
});

Deno.test("formatSockAddr() prints wg's endpoint forms", () => {
  const r = {
    getaddrinfo: () => ({ ok: false as const, code: -2, errno: 0 }),
    ifIndexToName: (i: number) => (i === 1 ? "lo" : null),
  };
  const v6 = (s: string) => inetPton6(s)!;
  assert.equal(
    formatSockAddr({ family: 4, addr: new Uint8Array([10, 0, 0, 1]), port: 51820, scopeId: 0 }, r),
    "10.0.0.1:51820",
  );
  assert.equal(
    formatSockAddr({ family: 6, addr: v6("fd00::1"), port: 1, scopeId: 0 }, r),
    "[fd00::1]:1",
  );
  assert.equal(
    formatSockAddr({ family: 6, addr: v6("fe80::1"), port: 2, scopeId: 1 }, r),
    "[fe80::1%lo]:2",
  );
  assert.equal(
    formatSockAddr({ family: 6, addr: v6("fe80::1"), port: 3, scopeId: 9 }, r),
    "[fe80::1%9]:3",
  );
  assert.equal(
    formatSockAddr({ family: 6, addr: v6("fd00::1"), port: 4, scopeId: 1 }, r),
    "[fd00::1%1]:4",
  );
  assert.equal(
    formatSockAddr({ family: 6, addr: v6("::ffff:1.2.3.4"), port: 5, scopeId: 0 }, r),
    "[::ffff:1.2.3.4]:5",
  );
});
