// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * {@link SackScoreboard}: the sender's record of what the peer has
 * selectively acknowledged (RFC 2018, RFC 6675 §3), as sorted, disjoint
 * [start, end) ranges of sequence space above SND.UNA, and the RFC 6675
 * queries over it: IsLost, the holes between the ranges, and the bytes
 * SACKed below a sequence number.
 *
 * Received blocks are hostile input: a block that is empty, inverted, ends
 * beyond SND.MAX or not above SND.UNA is ignored (one that starts below
 * SND.UNA and ends above it is cut at SND.UNA; a D-SACK block, RFC 2883,
 * lies wholly below and is ignored too); overlapping blocks merge; a block
 * that needs a range when all {@link MAX_SACK_RANGES} are taken is dropped.
 * Both are counted by the caller. Dropping SACK information is always safe:
 * the sender only retransmits more than it needed to.
 */
import { seqDiff, seqGt, seqLe, seqLt } from "./seq.ts";

/** SACKed ranges kept per connection at most. */
export const MAX_SACK_RANGES = 32;

/** DupThresh of RFC 6675 §2 (and RFC 5681's three duplicate ACKs). */
export const DUP_THRESH = 3;

/** What {@link SackScoreboard.update} did with one segment's blocks. */
export interface SackUpdate {
  /** Bytes newly marked SACKed. */
  newly: number;
  /** Blocks ignored as invalid (outside SND.UNA..SND.MAX, empty or inverted). */
  invalid: number;
  /** Valid blocks dropped because every range was taken. */
  dropped: number;
}

/** The sender's SACK scoreboard; see the module doc. */
export class SackScoreboard {
  /** Ranges as [start, end) pairs, sorted, disjoint, not touching; `count` of them. */
  readonly r: Uint32Array = new Uint32Array(MAX_SACK_RANGES * 2);
  count = 0;
  /** Total bytes in the ranges. */
  bytes = 0;
  readonly #result: SackUpdate = { newly: 0, invalid: 0, dropped: 0 };

  /** Forgets everything (reneging suspected, or the connection restarts its sending). */
  clear(): void {
    this.count = 0;
    this.bytes = 0;
  }

  /**
   * Adds the `n` blocks of `blocks` (pairs [left, right)) received while
   * SND.UNA was `una` and SND.MAX `max`; blocks are cut at `dataEnd` (where
   * our FIN, which is not tracked, sits). The returned object is reused.
   */
  update(
    blocks: Uint32Array,
    n: number,
    una: number,
    max: number,
    dataEnd: number,
  ): SackUpdate {
    const res = this.#result;
    res.newly = res.invalid = res.dropped = 0;
    for (let b = 0; b < n; b++) {
      let left = blocks[b * 2];
      const right = blocks[b * 2 + 1];
      if (!seqGt(right, una) || seqGt(right, max) || !seqLt(left, right)) {
        res.invalid++;
        continue;
      }
      if (seqLt(left, una)) left = una;
      const end = seqGt(right, dataEnd) ? dataEnd : right;
      if (!seqLt(left, end)) continue;
      const added = this.#add(left, end);
      if (added < 0) res.dropped++;
      else res.newly += added;
    }
    return res;
  }

  /** Merges [start, end) in; returns the bytes that were new, or -1 when no range was free. */
  #add(start: number, end: number): number {
    const r = this.r;
    const n = this.count;
    let i = 0;
    while (i < n && seqLt(r[i * 2 + 1], start)) i++;
    let j = i;
    let covered = 0;
    let s = start;
    let e = end;
    while (j < n && seqLe(r[j * 2], end)) {
      covered += seqDiff(r[j * 2 + 1], r[j * 2]);
      if (seqLt(r[j * 2], s)) s = r[j * 2];
      if (seqGt(r[j * 2 + 1], e)) e = r[j * 2 + 1];
      j++;
    }
    const merged = j - i;
    if (merged === 0 && n >= MAX_SACK_RANGES) return -1;
    r.copyWithin((i + 1) * 2, j * 2, n * 2);
    r[i * 2] = s;
    r[i * 2 + 1] = e;
    this.count = n + 1 - merged;
    const total = seqDiff(e, s);
    const added = total - covered;
    this.bytes += added;
    return added;
  }

  /** SND.UNA moved to `una`: forgets what it covers. */
  advance(una: number): void {
    const r = this.r;
    let n = this.count;
    let drop = 0;
    while (drop < n && seqLe(r[drop * 2 + 1], una)) {
      this.bytes -= seqDiff(r[drop * 2 + 1], r[drop * 2]);
      drop++;
    }
    if (drop > 0) {
      r.copyWithin(0, drop * 2, n * 2);
      n -= drop;
      this.count = n;
    }
    if (n > 0 && seqLt(r[0], una)) {
      this.bytes -= seqDiff(una, r[0]);
      r[0] = una;
    }
  }

  /** The end of the range holding `seq`, or `seq` itself when it is not SACKed. */
  skip(seq: number): number {
    const r = this.r;
    for (let i = 0; i < this.count; i++) {
      if (seqGt(r[i * 2], seq)) break;
      if (seqLt(seq, r[i * 2 + 1])) return r[i * 2 + 1];
    }
    return seq;
  }

  /** Start of the first range above `seq`, or `limit` when none starts before it. */
  nextStart(seq: number, limit: number): number {
    const r = this.r;
    for (let i = 0; i < this.count; i++) {
      if (seqGt(r[i * 2], seq)) return seqLt(r[i * 2], limit) ? r[i * 2] : limit;
    }
    return limit;
  }

  /** Bytes SACKed below `seq`. */
  sackedBelow(seq: number): number {
    const r = this.r;
    let sum = 0;
    for (let i = 0; i < this.count; i++) {
      const s = r[i * 2];
      if (!seqLt(s, seq)) break;
      const e = r[i * 2 + 1];
      sum += seqDiff(seqLt(e, seq) ? e : seq, s);
    }
    return sum;
  }

  /**
   * IsLost (RFC 6675 §4) for a byte below range `i` (the hole before it):
   * DupThresh ranges, or more than (DupThresh − 1) × `mss` bytes, SACKed above.
   */
  lostBelow(i: number, mss: number, above: number): boolean {
    return this.count - i >= DUP_THRESH || above > (DUP_THRESH - 1) * mss;
  }

  /**
   * The pipe of RFC 6675 §4 (SetPipe), in bytes, for the flight
   * [`una`, `max`): unSACKed bytes not deemed lost, plus those retransmitted
   * (below `rxtNext`, the byte after HighRxt) once more.
   */
  pipe(una: number, max: number, rxtNext: number, mss: number): number {
    const r = this.r;
    const n = this.count;
    let above = this.bytes;
    let start = una;
    let pipe = 0;
    for (let k = 0; k <= n; k++) {
      const end = k < n ? r[k * 2] : max;
      const len = seqDiff(end, start);
      if (len > 0) {
        if (k === n || !this.lostBelow(k, mss, above)) pipe += len;
        if (seqLt(start, rxtNext)) pipe += seqDiff(seqLt(end, rxtNext) ? end : rxtNext, start);
      }
      if (k < n) {
        above -= seqDiff(r[k * 2 + 1], r[k * 2]);
        start = r[k * 2 + 1];
      }
    }
    return pipe;
  }

  /** Set by {@link nextHole}: where the hole's unretransmitted part starts and ends. */
  holeStart = 0;
  holeEnd = 0;

  /**
   * Finds the first hole below the highest SACKed byte with bytes at or
   * above `rxtNext` not yet retransmitted (NextSeg rules 1 and 3 of RFC 6675
   * §4) and sets {@link holeStart}/{@link holeEnd}. Returns 1 when that hole
   * is deemed lost (rule 1), 3 when it is not (rule 3), 0 when there is none.
   */
  nextHole(una: number, rxtNext: number, mss: number): number {
    const r = this.r;
    const n = this.count;
    let above = this.bytes;
    let start = una;
    for (let k = 0; k < n; k++) {
      const end = r[k * 2];
      const from = seqLt(start, rxtNext) ? rxtNext : start;
      if (seqLt(from, end)) {
        this.holeStart = from;
        this.holeEnd = end;
        return this.lostBelow(k, mss, above) ? 1 : 3;
      }
      above -= seqDiff(r[k * 2 + 1], r[k * 2]);
      start = r[k * 2 + 1];
    }
    return 0;
  }

  /** IsLost(SND.UNA + 1): the first unacknowledged byte counts as lost. */
  firstLost(mss: number): boolean {
    return this.count > 0 && this.lostBelow(0, mss, this.bytes);
  }
}
