// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Allowed IPs: the cryptokey routing table (whitepaper §2). Each IP prefix
 * belongs to at most one value (a peer). Sending looks up the destination
 * address to pick the peer; receiving looks up the inner source address and
 * drops the packet unless it maps back to the peer it came from.
 *
 * One compressed binary trie (PATRICIA) per family, as the kernel's
 * `allowedips.c` and wireguard-go's `allowedips.go`: lookup walks down from
 * the root, remembering the last prefix that contains the address; that is
 * the longest match.
 *
 * Unlike those, the trie holds no objects. A UAPI `set` may install hundreds
 * of thousands of prefixes (the kernel's `netns.sh` pushes 130 560), and one
 * object per node cost ~440 bytes per prefix and a lot of GC work. Here each
 * family is a set of parallel typed arrays (struct of arrays): 13 bytes per
 * node and 17 (IPv4) or 29 (IPv6) bytes per entry, ~36 bytes per prefix for
 * `netns.sh`'s table, plus the arrays' spare capacity (they double up to
 * 65 536 slots, then grow by a quarter):
 *
 * - an *entry* is one allowed prefix: its masked key (1 or 4 big-endian
 *   words), length, value slot, and prev/next links of its value's list;
 * - a *node* exists only where the trie needs one: a branch point where two
 *   prefixes diverge (no key of its own: it is implied by any entry below
 *   it, as in Knuth's PATRICIA), or a prefix that has longer prefixes below
 *   it (then it points to its entry). A prefix with nothing below it is just
 *   an entry, referenced directly from its parent.
 *
 * References are one int: `0` is empty, `n > 0` is node `n`, `~e < 0` is the
 * leaf entry `e`. Since branch nodes carry no key, lookup checks the address
 * only against entries; once it fails to match one, nothing below it can
 * match either, so the walk stops there.
 *
 * Each value's prefixes form a doubly-linked list through the entries, in
 * insertion order across both families (the order UAPI `get` prints them).
 */

/** A prefix as listed for a value: `ip` has its host bits cleared. */
export interface AllowedIpEntry {
  family: 4 | 6;
  ip: Uint8Array;
  cidr: number;
}

/** Netmask of a /cidr IPv4 prefix, as an int32 (index 0–32). */
const MASK4 = new Int32Array(33);
/** Netmask words of a /cidr IPv6 prefix: word `i` of /c is at `4 * c + i`. */
const MASK6 = new Int32Array(129 * 4);
for (let c = 0; c <= 128; c++) {
  for (let i = 0; i < 4; i++) {
    const n = c - 32 * i;
    MASK6[4 * c + i] = n <= 0 ? 0 : n >= 32 ? -1 : -1 << (32 - n);
  }
  if (c <= 32) MASK4[c] = MASK6[4 * c];
}

/** Initial capacity of a table's node and entry arrays. */
const MIN_CAPACITY = 16;

/**
 * The trie of one address family. A plain struct for the module: its fields
 * are public so the lookup loop reads them monomorphically.
 */
class Table {
  /** Key words per entry: 1 (IPv4) or 4 (IPv6). */
  readonly words: number;
  /** Reference to the root (0 when the table is empty). */
  root = 0;
  /**
   * The root's prefix: key words at 0–3, netmask words at 4–7. Lookup checks
   * it first so that an address outside every prefix (a miss in a table of
   * one subnet's hosts) costs one comparison, not a walk down to a leaf.
   */
  rootPrefix = new Int32Array(8);

  // Nodes (index 0 is never used, so 0 can mean "empty").
  /** Child references for bit 0 and bit 1; a free node's c0 links the free list. */
  c0: Int32Array;
  c1: Int32Array;
  /** The prefix length of the node: the bit its children branch on. */
  bit: Uint8Array;
  /** The node's own entry, or -1 for a branch point. */
  nent: Int32Array;
  /** Nodes ever used (the next fresh index). */
  nodeTop = 1;
  /** Head of the free node list, 0 when none. */
  nodeFree = 0;

  // Entries.
  /** Masked key words, `words` per entry. */
  key: Int32Array;
  cidr: Uint8Array;
  /** Value slot in AllowedIps; -1 while the entry is free. */
  slot: Int32Array;
  /** Links of the value's list (see {@link listRef}), -1 at the ends; next also links free entries. */
  prev: Int32Array;
  next: Int32Array;
  entTop = 0;
  entFree = -1;
  /** Live entries. */
  size = 0;

  /** Set by {@link upsert}: the entry was created. */
  created = false;
  /** Set by {@link find}: where the entry hangs (parent 0 = root) and the grandparent. */
  parent = 0;
  side = 0;
  grand = 0;
  grandSide = 0;

  constructor(words: number) {
    this.words = words;
    this.c0 = new Int32Array(MIN_CAPACITY);
    this.c1 = new Int32Array(MIN_CAPACITY);
    this.bit = new Uint8Array(MIN_CAPACITY);
    this.nent = new Int32Array(MIN_CAPACITY);
    this.key = new Int32Array(MIN_CAPACITY * words);
    this.cidr = new Uint8Array(MIN_CAPACITY);
    this.slot = new Int32Array(MIN_CAPACITY);
    this.prev = new Int32Array(MIN_CAPACITY);
    this.next = new Int32Array(MIN_CAPACITY);
  }

  /**
   * The entry for prefix `k`/`c` (`k` masked), created if absent; sets
   * {@link created}. A new entry's slot and links are left for the caller.
   *
   * PATRICIA insertion: first walk down along `k` to any entry E in the
   * subtree where `k` would go, and take `d`, the length of the common prefix
   * of `k`/`c` and E. Then walk down again while a node's prefix (implied by
   * E) contains `k`/`c`, i.e. while its length is at most `d`, and put the
   * prefix there: it exists already, or it becomes the parent of what is
   * there (d = c), or a new branch node at bit `d` joins the two.
   */
  upsert(k: Int32Array, c: number): number {
    // At most one node and one entry are added: make room first, so the
    // arrays below stay valid.
    if (this.nodeFree === 0 && this.nodeTop === this.bit.length) this.#growNodes();
    if (this.entFree < 0 && this.entTop === this.cidr.length) this.#growEntries();
    const c0 = this.c0, c1 = this.c1, bit = this.bit, nent = this.nent;
    const key = this.key, cidr = this.cidr, words = this.words;

    let r = this.root;
    if (r === 0) {
      const e = this.#newEntry(k, c);
      this.#setChild(0, 0, ~e);
      this.created = true;
      return e;
    }
    // Phase 1: any entry below the place of k/c.
    let near: number;
    for (;;) {
      if (r < 0) {
        near = ~r;
        break;
      }
      const b = bit[r];
      if (b >= c) {
        // A prefix as long as k/c or longer: every entry below shares its
        // first `b` bits. Branch nodes always have two children.
        while (r > 0 && nent[r] < 0) r = c0[r];
        near = r < 0 ? ~r : nent[r];
        break;
      }
      const next = keyBit(k, 0, b) ? c1[r] : c0[r];
      if (next === 0) {
        // Only a node with an entry can have an empty side.
        near = nent[r];
        break;
      }
      r = next;
    }
    let d = commonBits(k, key, near * words, words);
    if (d > c) d = c;
    if (d > cidr[near]) d = cidr[near];

    // Phase 2: descend while the node's prefix contains k/c.
    let parent = 0, side = 0;
    r = this.root;
    while (r !== 0) {
      const len = r > 0 ? bit[r] : cidr[~r];
      if (len > d) break;
      if (len === c) {
        // The prefix is there already (len ≤ d ≤ c, so d = c).
        this.created = r > 0 && nent[r] < 0;
        if (r < 0) return ~r;
        if (!this.created) return nent[r];
        const e = this.#newEntry(k, c);
        nent[r] = e;
        return e;
      }
      if (r < 0) {
        // A shorter prefix with nothing below it yet: it becomes a node.
        const n = this.#newNode(len, ~r);
        this.#setChild(parent, side, n);
        r = n;
      }
      parent = r;
      side = keyBit(k, 0, len);
      r = side ? c1[r] : c0[r];
    }
    const e = this.#newEntry(k, c);
    this.created = true;
    if (r === 0) {
      this.#setChild(parent, side, ~e);
    } else if (d === c) {
      // k/c contains the subtree at r: it becomes r's parent, on the side
      // given by bit `c` of r's prefix (that is, of the entry near).
      const n = this.#newNode(c, e);
      if (keyBit(key, near * words, c)) c1[n] = r;
      else c0[n] = r;
      this.#setChild(parent, side, n);
    } else {
      // They diverge at bit d: a branch node there holds both.
      const n = this.#newNode(d, -1);
      if (keyBit(k, 0, d)) {
        c1[n] = ~e;
        c0[n] = r;
      } else {
        c0[n] = ~e;
        c1[n] = r;
      }
      this.#setChild(parent, side, n);
    }
    return e;
  }

  /**
   * The entry for prefix `k`/`c` (`k` masked), or -1; records where it
   * hangs for {@link detach}.
   */
  find(k: Int32Array, c: number): number {
    const c0 = this.c0, c1 = this.c1, bit = this.bit;
    let grand = 0, grandSide = 0, parent = 0, side = 0;
    let r = this.root;
    while (r > 0 && bit[r] < c) {
      grand = parent;
      grandSide = side;
      parent = r;
      side = keyBit(k, 0, bit[r]);
      r = side ? c1[r] : c0[r];
    }
    if (r === 0) return -1;
    const e = r < 0 ? ~r : bit[r] === c ? this.nent[r] : -1;
    if (e < 0 || this.cidr[e] !== c) return -1;
    // Branch nodes have no key, so the walk may have strayed: compare.
    const key = this.key, words = this.words, o = e * words;
    for (let i = 0; i < words; i++) if (key[o + i] !== k[i]) return -1;
    this.parent = parent;
    this.side = side;
    this.grand = grand;
    this.grandSide = grandSide;
    return e;
  }

  /**
   * Takes entry `e`, just returned by {@link find}, out of the trie and frees
   * it (its list links are the caller's business). A node left with one child
   * and no entry is spliced out, as the kernel's `remove_node` does; a node
   * left with an entry and no children becomes that leaf entry.
   */
  detach(e: number): void {
    const c0 = this.c0, c1 = this.c1, nent = this.nent;
    const parent = this.parent;
    const r = parent === 0 ? this.root : this.side ? c1[parent] : c0[parent];
    if (r > 0) {
      // A prefix with longer ones below: the node stays as a branch point if
      // it has two children, else its child takes its place.
      nent[r] = -1;
      if (c0[r] === 0 || c1[r] === 0) {
        this.#setChild(parent, this.side, c0[r] | c1[r]);
        this.#freeNode(r);
      }
    } else {
      this.#setChild(parent, this.side, 0);
      if (parent !== 0) {
        const other = this.side ? c0[parent] : c1[parent];
        if (nent[parent] < 0) {
          this.#setChild(this.grand, this.grandSide, other);
          this.#freeNode(parent);
        } else if (other === 0) {
          this.#setChild(this.grand, this.grandSide, ~nent[parent]);
          this.#freeNode(parent);
        }
      }
    }
    this.#freeEntry(e);
  }

  /** Writes entry `e`'s prefix (4 or 16 bytes, big-endian) to `out` at `off`. */
  writeKey(e: number, out: Uint8Array, off: number): void {
    const words = this.words;
    for (let i = 0; i < words; i++) {
      const w = this.key[e * words + i];
      out[off + 4 * i] = w >>> 24;
      out[off + 4 * i + 1] = w >>> 16;
      out[off + 4 * i + 2] = w >>> 8;
      out[off + 4 * i + 3] = w;
    }
  }

  /** Hangs `ref` (complete with its children) under `parent` on `side`, or makes it the root. */
  #setChild(parent: number, side: number, ref: number): void {
    if (parent !== 0) {
      if (side) this.c1[parent] = ref;
      else this.c0[parent] = ref;
      return;
    }
    this.root = ref;
    // The prefix of a node is fixed for its life and implied by any entry
    // below it, so it is computed only when the root changes.
    const rp = this.rootPrefix;
    rp.fill(0);
    if (ref === 0) return;
    let e = ref, len: number;
    if (ref < 0) {
      e = ~ref;
      len = this.cidr[e];
    } else {
      len = this.bit[ref];
      while (e > 0 && this.nent[e] < 0) e = this.c0[e];
      e = e < 0 ? ~e : this.nent[e];
    }
    const words = this.words;
    for (let i = 0; i < words; i++) {
      rp[4 + i] = MASK6[4 * len + i];
      rp[i] = this.key[e * words + i] & rp[4 + i];
    }
  }

  #newNode(len: number, e: number): number {
    let n = this.nodeFree;
    if (n !== 0) this.nodeFree = this.c0[n];
    else n = this.nodeTop++;
    this.c0[n] = 0;
    this.c1[n] = 0;
    this.bit[n] = len;
    this.nent[n] = e;
    return n;
  }

  #freeNode(n: number): void {
    this.c0[n] = this.nodeFree;
    this.c1[n] = 0;
    this.nent[n] = -1;
    this.nodeFree = n;
  }

  #newEntry(k: Int32Array, c: number): number {
    let e = this.entFree;
    if (e >= 0) this.entFree = this.next[e];
    else e = this.entTop++;
    const words = this.words;
    for (let i = 0; i < words; i++) this.key[e * words + i] = k[i];
    this.cidr[e] = c;
    this.slot[e] = -1;
    this.prev[e] = -1;
    this.next[e] = -1;
    this.size++;
    return e;
  }

  #freeEntry(e: number): void {
    this.slot[e] = -1;
    this.next[e] = this.entFree;
    this.entFree = e;
    this.size--;
  }

  #growNodes(): void {
    const cap = grownCapacity(this.bit.length);
    this.c0 = grownInt32(this.c0, cap);
    this.c1 = grownInt32(this.c1, cap);
    this.nent = grownInt32(this.nent, cap);
    const bit = new Uint8Array(cap);
    bit.set(this.bit);
    this.bit = bit;
  }

  #growEntries(): void {
    const cap = grownCapacity(this.cidr.length);
    this.key = grownInt32(this.key, cap * this.words);
    this.slot = grownInt32(this.slot, cap);
    this.prev = grownInt32(this.prev, cap);
    this.next = grownInt32(this.next, cap);
    const cidr = new Uint8Array(cap);
    cidr.set(this.cidr);
    this.cidr = cidr;
  }
}

/**
 * The next capacity of a table's arrays: doubling while small, then +25 %,
 * so that a big table carries at most a quarter of unused slots (the copies
 * cost a few milliseconds in all).
 */
function grownCapacity(cap: number): number {
  return cap < 65536 ? cap * 2 : cap + (cap >>> 2);
}

function grownInt32(old: Int32Array, cap: number): Int32Array {
  const a = new Int32Array(cap);
  a.set(old);
  return a;
}

/** Bit number `pos` (0 = most significant) of the key at `key[off..]`. */
function keyBit(key: Int32Array, off: number, pos: number): number {
  return (key[off + (pos >>> 5)] << (pos & 31)) < 0 ? 1 : 0;
}

/** Length of the common leading bits of `k` and the key at `key[off..]`. */
function commonBits(k: Int32Array, key: Int32Array, off: number, words: number): number {
  for (let i = 0; i < words; i++) {
    const x = k[i] ^ key[off + i];
    if (x !== 0) return 32 * i + Math.clz32(x);
  }
  return 32 * words;
}

/**
 * A value-list link: entry `e` of the IPv4 (`fam` 0) or IPv6 (`fam` 1)
 * table. -1 ends a list.
 */
function listRef(e: number, fam: number): number {
  return (e << 1) | fam;
}

/**
 * AllowedIps maps IPv4 and IPv6 prefixes to values with longest-prefix-match
 * lookup, and lists each value's prefixes in insertion order.
 */
export class AllowedIps<T> {
  #t4 = new Table(1);
  #t6 = new Table(4);
  /** Values by slot (undefined for a free slot). */
  #values: (T | undefined)[] = [];
  /** First and last list link of each slot's value. */
  #head: number[] = [];
  #tail: number[] = [];
  #slots = new Map<T, number>();
  #freeSlots: number[] = [];
  /** Scratch key for insert/remove (lookup never touches it). */
  #key = new Int32Array(4);

  /**
   * Makes `ip/cidr` (host bits ignored) an allowed IP of `value`, and puts it
   * at the end of `value`'s list: a prefix owned by another value moves to
   * this one, and re-inserting a prefix the value already owns moves it to
   * the end too (kernel `list_move_tail`, wireguard-go `addToPeerEntries`).
   * Throws a RangeError on a malformed prefix (the caller validates
   * configuration first).
   */
  insert(family: 4 | 6, ip: Uint8Array, cidr: number, value: T): void {
    const t = this.#prepare(family, ip, cidr);
    const fam = family === 4 ? 0 : 1;
    const e = t.upsert(this.#key, cidr);
    if (!t.created) this.#unlist(t, e);
    this.#append(this.#slotFor(value), t, fam, e);
  }

  /**
   * Removes `ip/cidr` (host bits ignored) if, and only if, `value` owns it.
   * Returns whether something was removed.
   */
  remove(family: 4 | 6, ip: Uint8Array, cidr: number, value: T): boolean {
    const t = this.#prepare(family, ip, cidr);
    const e = t.find(this.#key, cidr);
    if (e < 0 || this.#values[t.slot[e]] !== value) return false;
    this.#unlist(t, e);
    t.detach(e);
    if (t.size === 0) this.#shrinkEmpty();
    return true;
  }

  /** Removes every prefix owned by `value`. */
  removeByValue(value: T): void {
    const slot = this.#slots.get(value);
    if (slot === undefined) return;
    const k = this.#key;
    let ref = this.#head[slot];
    while (ref !== -1) {
      const t = ref & 1 ? this.#t6 : this.#t4;
      const e = ref >>> 1;
      ref = t.next[e];
      const words = t.words;
      for (let i = 0; i < words; i++) k[i] = t.key[e * words + i];
      t.find(k, t.cidr[e]);
      t.detach(e);
    }
    this.#release(slot);
    this.#shrinkEmpty();
  }

  /**
   * The value owning the longest prefix that contains the address stored at
   * `bytes[offset..]` (4 bytes for IPv4, 16 for IPv6), or undefined. `bytes`
   * may be a whole packet. Never throws and never allocates.
   */
  lookup(family: 4 | 6, bytes: Uint8Array, offset = 0): T | undefined {
    if (family === 4) {
      if (!(offset >= 0) || offset + 4 > bytes.length) return undefined;
      return this.#lookup4(readWord(bytes, offset));
    }
    if (family === 6) {
      if (!(offset >= 0) || offset + 16 > bytes.length) return undefined;
      return this.#lookup6(
        readWord(bytes, offset),
        readWord(bytes, offset + 4),
        readWord(bytes, offset + 8),
        readWord(bytes, offset + 12),
      );
    }
    return undefined;
  }

  /**
   * The prefixes owned by `value`, in insertion order, host bits cleared.
   * Each `ip` is a fresh view of one buffer made for this call: a separate
   * small Uint8Array each costs ~1 µs in Deno (its own backing store), which
   * made listing 130 560 prefixes take 150–300 ms.
   */
  entriesFor(value: T): AllowedIpEntry[] {
    const out: AllowedIpEntry[] = [];
    const slot = this.#slots.get(value);
    if (slot === undefined) return out;
    let bytes = 0;
    for (let ref = this.#head[slot]; ref !== -1;) {
      const t = ref & 1 ? this.#t6 : this.#t4;
      bytes += t.words * 4;
      ref = t.next[ref >>> 1];
    }
    const buf = new ArrayBuffer(bytes);
    const all = new Uint8Array(buf);
    let off = 0;
    for (let ref = this.#head[slot]; ref !== -1;) {
      const v6 = (ref & 1) === 1;
      const t = v6 ? this.#t6 : this.#t4;
      const e = ref >>> 1;
      const len = t.words * 4;
      t.writeKey(e, all, off);
      out.push({ family: v6 ? 6 : 4, ip: new Uint8Array(buf, off, len), cidr: t.cidr[e] });
      off += len;
      ref = t.next[e];
    }
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.#t4 = new Table(1);
    this.#t6 = new Table(4);
    this.#values = [];
    this.#head = [];
    this.#tail = [];
    this.#slots.clear();
    this.#freeSlots = [];
  }

  #lookup4(a: number): T | undefined {
    const t = this.#t4;
    const rp = t.rootPrefix;
    if (((a ^ rp[0]) & rp[4]) !== 0) return undefined;
    const c0 = t.c0, c1 = t.c1, bit = t.bit, nent = t.nent, key = t.key, cidr = t.cidr;
    let found = -1;
    let r = t.root;
    while (r > 0) {
      const e = nent[r];
      if (e >= 0) {
        if (((a ^ key[e]) & MASK4[cidr[e]]) !== 0) break;
        found = e;
      }
      // Bit number bit[r] of the address, counted from the most significant.
      r = (a << bit[r]) < 0 ? c1[r] : c0[r];
    }
    if (r < 0) {
      const e = ~r;
      if (((a ^ key[e]) & MASK4[cidr[e]]) === 0) found = e;
    }
    return found < 0 ? undefined : this.#values[t.slot[found]];
  }

  #lookup6(a0: number, a1: number, a2: number, a3: number): T | undefined {
    const t = this.#t6;
    const rp = t.rootPrefix;
    if (
      (((a0 ^ rp[0]) & rp[4]) | ((a1 ^ rp[1]) & rp[5]) | ((a2 ^ rp[2]) & rp[6]) |
        ((a3 ^ rp[3]) & rp[7])) !== 0
    ) return undefined;
    const c0 = t.c0, c1 = t.c1, bit = t.bit, nent = t.nent, key = t.key, cidr = t.cidr;
    let found = -1;
    let r = t.root;
    let e = -1;
    while (r > 0) {
      e = nent[r];
      if (e >= 0) {
        const o = e << 2, m = cidr[e] << 2;
        if (
          (((a0 ^ key[o]) & MASK6[m]) | ((a1 ^ key[o + 1]) & MASK6[m + 1]) |
            ((a2 ^ key[o + 2]) & MASK6[m + 2]) | ((a3 ^ key[o + 3]) & MASK6[m + 3])) !== 0
        ) break;
        found = e;
      }
      const b = bit[r], w = b >>> 5;
      const word = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      r = (word << (b & 31)) < 0 ? c1[r] : c0[r];
    }
    if (r < 0) {
      e = ~r;
      const o = e << 2, m = cidr[e] << 2;
      if (
        (((a0 ^ key[o]) & MASK6[m]) | ((a1 ^ key[o + 1]) & MASK6[m + 1]) |
          ((a2 ^ key[o + 2]) & MASK6[m + 2]) | ((a3 ^ key[o + 3]) & MASK6[m + 3])) === 0
      ) found = e;
    }
    return found < 0 ? undefined : this.#values[t.slot[found]];
  }

  /** Validates a prefix, loads its masked address into the scratch key, and picks the table. */
  #prepare(family: 4 | 6, ip: Uint8Array, cidr: number): Table {
    const len = family === 4 ? 4 : family === 6 ? 16 : -1;
    if (len < 0) throw new RangeError(`Cannot use address family ${family}`);
    if (ip.length !== len) {
      throw new RangeError(`Cannot use a ${ip.length}-byte address as IPv${family}`);
    }
    if (!Number.isInteger(cidr) || cidr < 0 || cidr > len * 8) {
      throw new RangeError(`Cannot use prefix length ${cidr} for IPv${family}`);
    }
    const key = this.#key;
    for (let i = 0; i < len; i += 4) key[i >>> 2] = readWord(ip, i) & MASK6[4 * cidr + (i >>> 2)];
    return family === 4 ? this.#t4 : this.#t6;
  }

  /** The slot of `value`, taking a free one for a value that has no prefixes yet. */
  #slotFor(value: T): number {
    let slot = this.#slots.get(value);
    if (slot !== undefined) return slot;
    slot = this.#freeSlots.pop() ?? this.#values.length;
    this.#values[slot] = value;
    this.#head[slot] = -1;
    this.#tail[slot] = -1;
    this.#slots.set(value, slot);
    return slot;
  }

  /** Frees the slot of a value that has no prefixes left. */
  #release(slot: number): void {
    this.#slots.delete(this.#values[slot] as T);
    this.#values[slot] = undefined;
    this.#head[slot] = -1;
    this.#tail[slot] = -1;
    this.#freeSlots.push(slot);
  }

  /** Appends entry `e` of `t` to the list of `slot` and gives it to that slot's value. */
  #append(slot: number, t: Table, fam: number, e: number): void {
    const ref = listRef(e, fam);
    const last = this.#tail[slot];
    t.slot[e] = slot;
    t.prev[e] = last;
    t.next[e] = -1;
    if (last === -1) this.#head[slot] = ref;
    else (last & 1 ? this.#t6 : this.#t4).next[last >>> 1] = ref;
    this.#tail[slot] = ref;
  }

  /** Takes entry `e` of `t` off its value's list, freeing the slot when that empties it. */
  #unlist(t: Table, e: number): void {
    const slot = t.slot[e];
    const p = t.prev[e], n = t.next[e];
    if (p === -1) this.#head[slot] = n;
    else (p & 1 ? this.#t6 : this.#t4).next[p >>> 1] = n;
    if (n === -1) this.#tail[slot] = p;
    else (n & 1 ? this.#t6 : this.#t4).prev[n >>> 1] = p;
    if (this.#head[slot] === -1) this.#release(slot);
  }

  /** Gives the memory of an emptied table back (a big configuration was removed). */
  #shrinkEmpty(): void {
    if (this.#t4.size === 0 && this.#t4.cidr.length > MIN_CAPACITY) this.#t4 = new Table(1);
    if (this.#t6.size === 0 && this.#t6.cidr.length > MIN_CAPACITY) this.#t6 = new Table(4);
  }
}

/** Big-endian word at `off`, as an int32. */
function readWord(b: Uint8Array, off: number): number {
  return (b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3];
}
