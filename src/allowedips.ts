// SPDX-License-Identifier: Apache-2.0
/**
 * @module
 * Allowed IPs: the cryptokey routing table (whitepaper §2). Each IP prefix
 * belongs to at most one value (a peer). Sending looks up the destination
 * address to pick the peer; receiving looks up the inner source address and
 * drops the packet unless it maps back to the peer it came from.
 *
 * One compressed binary trie (PATRICIA) per family, as the kernel's
 * `allowedips.c` and wireguard-go's `allowedips.go`: every node is a prefix;
 * a node with a value is an allowed IP, a node without one is a branch point
 * that exists only because two prefixes diverge there (it always has two
 * children). Lookup walks down from the root, remembering the last node with
 * a value: that is the longest matching prefix.
 *
 * Addresses are handled as big-endian u32 words (one for IPv4, four for
 * IPv6) so matching is a few XOR/AND operations per node, and lookup reads the
 * address straight out of a packet without allocating.
 */

/** A prefix as listed for a value: `ip` has its host bits cleared. */
export interface AllowedIpEntry {
  family: 4 | 6;
  ip: Uint8Array;
  cidr: number;
}

/** One trie node. Fields are public to the module for a monomorphic hot path. */
class Node<T> {
  readonly family: 4 | 6;
  readonly cidr: number;
  /** Prefix words, host bits cleared (IPv4 uses k0 only, the rest are 0). */
  readonly k0: number;
  readonly k1: number;
  readonly k2: number;
  readonly k3: number;
  /** Netmask words for cidr. */
  readonly m0: number;
  readonly m1: number;
  readonly m2: number;
  readonly m3: number;
  /** Where bit number `cidr` (the branch bit) lives: word index and right shift. */
  readonly bitWord: number;
  readonly bitShift: number;
  child0: Node<T> | null = null;
  child1: Node<T> | null = null;
  parent: Node<T> | null = null;
  /** True when this prefix is an allowed IP of `value`; false for branch nodes. */
  owned = false;
  value: T | undefined = undefined;

  constructor(family: 4 | 6, key: Uint32Array, cidr: number) {
    this.family = family;
    this.cidr = cidr;
    this.m0 = maskWord(cidr, 0);
    this.m1 = maskWord(cidr, 1);
    this.m2 = maskWord(cidr, 2);
    this.m3 = maskWord(cidr, 3);
    this.k0 = (key[0] & this.m0) >>> 0;
    this.k1 = family === 6 ? (key[1] & this.m1) >>> 0 : 0;
    this.k2 = family === 6 ? (key[2] & this.m2) >>> 0 : 0;
    this.k3 = family === 6 ? (key[3] & this.m3) >>> 0 : 0;
    this.bitWord = cidr >>> 5;
    this.bitShift = 31 - (cidr & 31);
  }

  /** Word `i` of the prefix. */
  word(i: number): number {
    return i === 0 ? this.k0 : i === 1 ? this.k1 : i === 2 ? this.k2 : this.k3;
  }
}

/** The netmask bits of a /cidr prefix that fall in word `i` (0-based, big-endian). */
function maskWord(cidr: number, i: number): number {
  const n = cidr - 32 * i;
  if (n <= 0) return 0;
  if (n >= 32) return 0xffffffff;
  return (0xffffffff << (32 - n)) >>> 0;
}

/** Bit number `pos` (0 = most significant) of a key held as words. */
function keyBit(key: Uint32Array, pos: number): number {
  return (key[pos >>> 5] >>> (31 - (pos & 31))) & 1;
}

/** Bit number `pos` of a node's prefix. */
function nodeBit<T>(node: Node<T>, pos: number): number {
  return (node.word(pos >>> 5) >>> (31 - (pos & 31))) & 1;
}

/** Length of the common leading bits of a node's prefix and a key. */
function commonBits<T>(node: Node<T>, key: Uint32Array, words: number): number {
  for (let i = 0; i < words; i++) {
    const x = (node.word(i) ^ key[i]) >>> 0;
    if (x !== 0) return 32 * i + Math.clz32(x);
  }
  return 32 * words;
}

/** True when the key lies inside the node's prefix. */
function matches<T>(node: Node<T>, key: Uint32Array): boolean {
  return (((key[0] ^ node.k0) & node.m0) | ((key[1] ^ node.k1) & node.m1) |
    ((key[2] ^ node.k2) & node.m2) | ((key[3] ^ node.k3) & node.m3)) === 0;
}

/**
 * AllowedIps maps IPv4 and IPv6 prefixes to values with longest-prefix-match
 * lookup, and lists each value's prefixes in insertion order.
 */
export class AllowedIps<T> {
  #root4: Node<T> | null = null;
  #root6: Node<T> | null = null;
  /** Each value's nodes, in insertion order (Set keeps it). */
  #byValue = new Map<T, Set<Node<T>>>();
  /** Scratch key for insert/remove (lookup never touches it). */
  #key = new Uint32Array(4);

  /**
   * Makes `ip/cidr` (host bits ignored) an allowed IP of `value`. A prefix
   * owned by another value moves to this one and goes to the end of its list,
   * as in the kernel and wireguard-go; re-inserting a prefix the value already
   * owns keeps its place in the list. Throws a RangeError on a malformed
   * prefix (the caller validates configuration first).
   */
  insert(family: 4 | 6, ip: Uint8Array, cidr: number, value: T): void {
    const key = this.#loadKey(family, ip, cidr);
    const words = family === 4 ? 1 : 4;
    let parent: Node<T> | null = null;
    let node = family === 4 ? this.#root4 : this.#root6;
    while (node !== null && node.cidr <= cidr && matches(node, key)) {
      if (node.cidr === cidr) {
        this.#assign(node, value);
        return;
      }
      parent = node;
      node = keyBit(key, node.cidr) ? node.child1 : node.child0;
    }
    const leaf = new Node<T>(family, key, cidr);
    this.#assign(leaf, value);
    if (node === null) {
      this.#attach(family, parent, key, leaf);
      return;
    }
    // `node` does not lie inside the new prefix's path: either the new prefix
    // contains it (it becomes node's parent) or they diverge at bit `common`,
    // which needs a new branch node there.
    let common = commonBits(node, key, words);
    if (common > cidr) common = cidr;
    if (common === cidr) {
      this.#setChild(leaf, nodeBit(node, cidr), node);
      this.#attach(family, parent, key, leaf);
      return;
    }
    const branch = new Node<T>(family, key, common);
    this.#setChild(branch, nodeBit(node, common), node);
    this.#setChild(branch, keyBit(key, common), leaf);
    this.#attach(family, parent, key, branch);
  }

  /**
   * Removes `ip/cidr` (host bits ignored) if, and only if, `value` owns it.
   * Returns whether something was removed.
   */
  remove(family: 4 | 6, ip: Uint8Array, cidr: number, value: T): boolean {
    const key = this.#loadKey(family, ip, cidr);
    let node = family === 4 ? this.#root4 : this.#root6;
    while (node !== null && node.cidr <= cidr && matches(node, key)) {
      if (node.cidr === cidr) {
        if (!node.owned || node.value !== value) return false;
        this.#unlist(node);
        this.#removeNode(node);
        return true;
      }
      node = keyBit(key, node.cidr) ? node.child1 : node.child0;
    }
    return false;
  }

  /** Removes every prefix owned by `value`. */
  removeByValue(value: T): void {
    const nodes = this.#byValue.get(value);
    if (nodes === undefined) return;
    this.#byValue.delete(value);
    for (const node of nodes) this.#removeNode(node);
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

  /** The prefixes owned by `value`, in insertion order, host bits cleared. */
  entriesFor(value: T): AllowedIpEntry[] {
    const nodes = this.#byValue.get(value);
    const out: AllowedIpEntry[] = [];
    if (nodes === undefined) return out;
    for (const node of nodes) {
      const ip = new Uint8Array(node.family === 4 ? 4 : 16);
      for (let i = 0; i < ip.length; i += 4) {
        const w = node.word(i >>> 2);
        ip[i] = w >>> 24;
        ip[i + 1] = w >>> 16;
        ip[i + 2] = w >>> 8;
        ip[i + 3] = w;
      }
      out.push({ family: node.family, ip, cidr: node.cidr });
    }
    return out;
  }

  /** Removes everything. */
  clear(): void {
    this.#root4 = null;
    this.#root6 = null;
    this.#byValue.clear();
  }

  #lookup4(a: number): T | undefined {
    let found: T | undefined = undefined;
    let node = this.#root4;
    while (node !== null) {
      if (((a ^ node.k0) & node.m0) !== 0) break;
      if (node.owned) found = node.value;
      if (node.cidr === 32) break;
      node = ((a >>> node.bitShift) & 1) !== 0 ? node.child1 : node.child0;
    }
    return found;
  }

  #lookup6(a0: number, a1: number, a2: number, a3: number): T | undefined {
    let found: T | undefined = undefined;
    let node = this.#root6;
    while (node !== null) {
      if (
        (((a0 ^ node.k0) & node.m0) | ((a1 ^ node.k1) & node.m1) |
          ((a2 ^ node.k2) & node.m2) | ((a3 ^ node.k3) & node.m3)) !== 0
      ) break;
      if (node.owned) found = node.value;
      if (node.cidr === 128) break;
      const w = node.bitWord;
      const word = w === 0 ? a0 : w === 1 ? a1 : w === 2 ? a2 : a3;
      node = ((word >>> node.bitShift) & 1) !== 0 ? node.child1 : node.child0;
    }
    return found;
  }

  /** Validates a prefix and loads its address into the scratch key. */
  #loadKey(family: 4 | 6, ip: Uint8Array, cidr: number): Uint32Array {
    const len = family === 4 ? 4 : family === 6 ? 16 : -1;
    if (len < 0) throw new RangeError(`Cannot use address family ${family}`);
    if (ip.length !== len) {
      throw new RangeError(`Cannot use a ${ip.length}-byte address as IPv${family}`);
    }
    if (!Number.isInteger(cidr) || cidr < 0 || cidr > len * 8) {
      throw new RangeError(`Cannot use prefix length ${cidr} for IPv${family}`);
    }
    const key = this.#key;
    key.fill(0);
    for (let i = 0; i < len; i += 4) key[i >>> 2] = readWord(ip, i);
    return key;
  }

  /** Gives `node` to `value`, moving it between per-value lists as needed. */
  #assign(node: Node<T>, value: T): void {
    // Re-inserting moves the prefix to the end of its value's list, even for
    // the same value (kernel list_move_tail, wireguard-go addToPeerEntries).
    if (node.owned) this.#unlist(node);
    node.owned = true;
    node.value = value;
    let nodes = this.#byValue.get(value);
    if (nodes === undefined) {
      nodes = new Set();
      this.#byValue.set(value, nodes);
    }
    nodes.add(node);
  }

  /** Takes `node` off its value's list. */
  #unlist(node: Node<T>): void {
    const nodes = this.#byValue.get(node.value as T);
    if (nodes === undefined) return;
    nodes.delete(node);
    if (nodes.size === 0) this.#byValue.delete(node.value as T);
  }

  /** Puts `child` under `parent` on side `bit`. */
  #setChild(parent: Node<T>, bit: number, child: Node<T>): void {
    if (bit) parent.child1 = child;
    else parent.child0 = child;
    child.parent = parent;
  }

  /** Puts `node` where the walk for `key` left off: under `parent`, or as the root. */
  #attach(family: 4 | 6, parent: Node<T> | null, key: Uint32Array, node: Node<T>): void {
    if (parent === null) {
      node.parent = null;
      if (family === 4) this.#root4 = node;
      else this.#root6 = node;
    } else {
      this.#setChild(parent, keyBit(key, parent.cidr), node);
    }
  }

  /** Replaces `old` by `next` (possibly null) in its parent or as the root. */
  #replace(old: Node<T>, next: Node<T> | null): void {
    const parent = old.parent;
    if (next !== null) next.parent = parent;
    if (parent === null) {
      if (old.family === 4) this.#root4 = next;
      else this.#root6 = next;
    } else if (parent.child0 === old) {
      parent.child0 = next;
    } else {
      parent.child1 = next;
    }
    old.parent = null;
  }

  /**
   * Clears a node's value and prunes the trie: a node with two children stays
   * as a branch point; one with a single child is replaced by it; a leaf is
   * unlinked, and if that leaves a valueless parent with one child, that
   * parent is spliced out too (kernel allowedips.c remove_node).
   */
  #removeNode(node: Node<T>): void {
    node.owned = false;
    node.value = undefined;
    if (node.child0 !== null && node.child1 !== null) return;
    const child = node.child0 ?? node.child1;
    const parent = node.parent;
    this.#replace(node, child);
    if (child !== null || parent === null || parent.owned) return;
    const other = parent.child0 ?? parent.child1;
    parent.child0 = null;
    parent.child1 = null;
    this.#replace(parent, other);
  }
}

/** Big-endian u32 at `off`. */
function readWord(b: Uint8Array, off: number): number {
  return ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3]) >>> 0;
}
