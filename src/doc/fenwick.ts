/**
 * A Fenwick (binary indexed) tree over 0/1 "alive" flags: O(log n) updates and prefix counts.
 * The compiler uses it to turn a row's original slot into its current array index while rows are
 * removed, without rescanning.
 */
export class Fenwick {
  private readonly tree: Int32Array;

  /** A tree of `capacity` slots, the first `alive` of them set to 1 (built in O(capacity)). */
  constructor(capacity: number, alive: number) {
    const tree = new Int32Array(capacity + 1);
    for (let i = 1; i <= capacity; i++) {
      if (i <= alive) tree[i] = (tree[i] as number) + 1;
      const j = i + (i & -i);
      if (j <= capacity) tree[j] = (tree[j] as number) + (tree[i] as number);
    }
    this.tree = tree;
  }

  /** Adds `delta` to slot `slot` (0-based). */
  add(slot: number, delta: number): void {
    for (let i = slot + 1; i < this.tree.length; i += i & -i) this.tree[i] = (this.tree[i] as number) + delta;
  }

  /** The sum of slots `0 .. slot - 1` (the current index of slot `slot` when it is alive). */
  before(slot: number): number {
    let sum = 0;
    for (let i = slot; i > 0; i -= i & -i) sum += this.tree[i] as number;
    return sum;
  }
}
