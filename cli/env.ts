// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * The process environment as a plain record, for the commands' entry points:
 * without --allow-env it is empty, and every command then behaves as if no
 * variable were set (PATH falls back to its default where one is needed).
 */

/** envObject() is `Deno.env.toObject()`, or `{}` when environment access is denied. */
export function envObject(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {};
  }
}
