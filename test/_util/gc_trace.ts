// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Reading V8's `--trace-gc` output in the allocation tests: a helper
 * process calls `gc()` (with `--expose-gc`) before and after its measured
 * phase, which V8 prints as "Mark-Compact … testing" lines; every
 * "Scavenge" line between those two markers is a young-generation
 * collection caused by the measured phase.
 */

/** Scavenges V8 reported between the first and second `gc()` ("testing") lines. */
export function scavengesBetweenMarkers(trace: string): { markers: number; scavenges: number } {
  let markers = 0, scavenges = 0;
  for (const line of trace.split("\n")) {
    if (line.includes("Mark-Compact") && line.includes("testing")) markers++;
    else if (markers === 1 && line.includes("Scavenge")) scavenges++;
  }
  return { markers, scavenges };
}
