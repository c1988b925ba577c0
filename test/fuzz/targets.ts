// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The fuzz targets by name, shared by the CLI (`test/fuzz/main.ts`) and the
 * CI test (`test/fuzz/fuzz_test.ts`).
 */
import type { FuzzTarget } from "./harness.ts";
import { fuzzReceive } from "./receive.ts";
import { fuzzTun } from "./tun.ts";
import { fuzzUapi } from "./uapi.ts";
import { fuzzControl } from "./control.ts";
import { fuzzQuickConfig } from "./quick_config.ts";
import { fuzzWgConfig } from "./wg_config.ts";

/** Every target, in the order the CLI runs them. */
export const TARGETS: Record<string, FuzzTarget> = {
  receive: fuzzReceive,
  tun: fuzzTun,
  uapi: fuzzUapi,
  control: fuzzControl,
  "quick-config": fuzzQuickConfig,
  "wg-config": fuzzWgConfig,
};

/**
 * Iterations per round for each target in the CLI (about a second each with
 * the native crypto backend); `--minutes` runs rounds with fresh seeds.
 */
export const ROUND_ITERATIONS: Record<string, number> = {
  receive: 20_000,
  tun: 2_000,
  uapi: 500,
  control: 1_000,
  "quick-config": 5_000,
  "wg-config": 2_000,
};
