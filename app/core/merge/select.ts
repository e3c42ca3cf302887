/**
 * Magnitude selection without sorting: radix select on float32 bit patterns.
 *
 * For a float32 x, `bits(x) & 0x7fffffff` is the bit pattern of |x|, and for non-negative
 * floats the bit pattern read as an unsigned integer orders exactly like the value (+0 and
 * −0 both map to 0; NaN patterns sort above +Inf, which matches torch's descending sort
 * that puts NaN first). So the element of a given rank is found with three histogram
 * passes over the 31 key bits (11 + 11 + 10 bits), O(n) time, 8 KiB of scratch, and no copy.
 *
 * Tie-breaking. mergekit ranks with `torch.argsort(|δ|, descending=True)[:k]` (magnitude)
 * and `torch.sort(|δ|).indices[n_bot:-n_top]` (breadcrumbs); `sce` uses `torch.topk`. On CPU
 * these use `std::sort` / partial selection, whose order among EQUAL magnitudes is
 * unspecified, so mergekit's choice among ties at the threshold is not reproducible. We use
 * the stable order instead (what torch gives with `stable=True`): among equal magnitudes
 * the lower flat index comes first — i.e. top-k keeps the lowest-index ties, and an
 * ascending rank window cuts ties at the bottom by dropping the lowest indices first.
 * Ties only matter for equal non-zero magnitudes at the cut (rare in float32 data, more
 * common in bf16-derived deltas); equal zeros never change a result.
 */

const PASSES: readonly (readonly [shift: number, width: number])[] = [
  [21, 11],
  [10, 11],
  [0, 10],
];

/** The float32 bit patterns of `x` (a view on the same memory, not a copy). */
export function bitsView(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

/** Result of selecting one ascending rank of |x|. */
export interface RankSelection {
  /** `bits(|x|)` of the element at that rank. */
  readonly key: number;
  /** Number of elements with a strictly smaller key. */
  readonly less: number;
  /** Number of elements with exactly this key. */
  readonly equal: number;
}

/** Find the |x| key at 0-based ascending rank `rank` (0 ≤ rank < n). */
export function selectAbsRank(bits: Uint32Array, rank: number): RankSelection {
  const n = bits.length;
  if (!(rank >= 0 && rank < n)) throw new RangeError(`rank ${rank} out of range for ${n} elements`);
  const hist = new Uint32Array(1 << 11);
  let prefix = 0;
  let prefixMask = 0;
  let r = rank;
  let less = 0;
  let equal = 0;
  for (const [shift, width] of PASSES) {
    const size = 1 << width;
    const digitMask = size - 1;
    hist.fill(0);
    for (let i = 0; i < n; i++) {
      const key = bits[i] & 0x7fffffff;
      if ((key & prefixMask) === prefix) hist[(key >>> shift) & digitMask]++;
    }
    let cum = 0;
    let digit = 0;
    for (; digit < size; digit++) {
      const h = hist[digit];
      if (cum + h > r) break;
      cum += h;
    }
    less += cum;
    r -= cum;
    equal = hist[digit];
    prefix |= digit << shift;
    prefixMask |= digitMask << shift;
  }
  return { key: prefix, less, equal };
}

/**
 * Mask of the `k` largest |x| (mergekit `magnitude`). Ties at the threshold go to the lower
 * flat index. `k ≤ 0` keeps nothing, `k ≥ n` keeps everything.
 */
export function topKAbsMask(x: Float32Array, k: number): Uint8Array {
  const n = x.length;
  const mask = new Uint8Array(n);
  if (k <= 0) return mask;
  if (k >= n) return mask.fill(1);
  const bits = bitsView(x);
  const sel = selectAbsRank(bits, n - k);
  let ties = k - (n - sel.less - sel.equal);
  for (let i = 0; i < n; i++) {
    const key = bits[i] & 0x7fffffff;
    if (key > sel.key) mask[i] = 1;
    else if (key === sel.key && ties > 0) {
      mask[i] = 1;
      ties--;
    }
  }
  return mask;
}

/**
 * Mask of the elements whose stable ascending |x| rank lies in [start, stop) (mergekit
 * `magnitude_outliers`: `sort(|x|).indices[start:stop]`). Among equal magnitudes the lower
 * index has the lower rank.
 */
export function absRankWindowMask(x: Float32Array, start: number, stop: number): Uint8Array {
  const n = x.length;
  const mask = new Uint8Array(n);
  const from = Math.max(0, start);
  const to = Math.min(n, stop);
  if (from >= to) return mask;
  const bits = bitsView(x);
  const lo = selectAbsRank(bits, from);
  const hi = selectAbsRank(bits, to - 1);
  const loSkip = from - lo.less; // ties with key lo.key whose tie index is below this are cut
  const hiLast = to - 1 - hi.less; // ties with key hi.key whose tie index is above this are cut
  let jLo = 0;
  let jHi = 0;
  for (let i = 0; i < n; i++) {
    const key = bits[i] & 0x7fffffff;
    if (key < lo.key || key > hi.key) continue;
    if (key === lo.key && key === hi.key) {
      const j = jLo++;
      if (j >= loSkip && j <= hiLast) mask[i] = 1;
    } else if (key === lo.key) {
      if (jLo++ >= loSkip) mask[i] = 1;
    } else if (key === hi.key) {
      if (jHi++ <= hiLast) mask[i] = 1;
    } else {
      mask[i] = 1;
    }
  }
  return mask;
}

/**
 * Stable ascending ranks (0-based) of |x[offset + j·stride]| for j < length, written to
 * `ranks[j]`. Sorts packed (key · 2^22 + j) doubles, which are exact below 2^53, so no
 * comparator is needed; very long vectors fall back to a comparator sort.
 */
export function stableAbsRanks(
  bits: Uint32Array,
  offset: number,
  stride: number,
  length: number,
  ranks: Uint32Array,
): void {
  if (length <= 1 << 22) {
    const packed = new Float64Array(length);
    for (let j = 0; j < length; j++) packed[j] = (bits[offset + j * stride] & 0x7fffffff) * 4194304 + j;
    packed.sort();
    for (let r = 0; r < length; r++) ranks[packed[r] % 4194304] = r;
    return;
  }
  const order = new Uint32Array(length);
  for (let j = 0; j < length; j++) order[j] = j;
  const key = (j: number): number => bits[offset + j * stride] & 0x7fffffff;
  order.sort((a, b) => key(a) - key(b) || a - b);
  for (let r = 0; r < length; r++) ranks[order[r]] = r;
}
