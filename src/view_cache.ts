// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * ViewCache hands out `subarray` views of one buffer without making a new one
 * each time: slot `k` keeps the last view it made and returns it again while
 * the range is the same. The data path asks for the same ranges packet after
 * packet (a batch's job `i` sits at the same offset with the same length while
 * traffic is uniform), so the steady path allocates no view; a different
 * range costs one view, as before.
 */
export class ViewCache {
  readonly #data: Uint8Array;
  readonly #start: Int32Array;
  readonly #end: Int32Array;
  readonly #views: Uint8Array[];

  /** A cache of `slots` views of `data`. */
  constructor(data: Uint8Array, slots: number) {
    this.#data = data;
    this.#start = new Int32Array(slots).fill(-1);
    this.#end = new Int32Array(slots).fill(-1);
    this.#views = new Array(slots).fill(data);
  }

  /** `data.subarray(start, end)`, from slot `k` when it holds that range. */
  get(k: number, start: number, end: number): Uint8Array {
    if (this.#start[k] === start && this.#end[k] === end) return this.#views[k];
    this.#start[k] = start;
    this.#end[k] = end;
    return (this.#views[k] = this.#data.subarray(start, end));
  }
}
