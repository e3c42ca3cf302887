/**
 * Seeded, deterministic random numbers for the random merge methods (DARE, DELLA).
 *
 * Generator: xoshiro128** (Blackman & Vigna, https://prng.di.unimi.it/), 128-bit state,
 * 32-bit outputs, period 2^128 − 1. Its state is seeded by expanding 128 bits of "seed
 * material" with the splitmix32 finaliser (Wellons' `lowbias32`-style 32-bit mix).
 *
 * Streams are derived, not advanced: `fork(key)` hashes the key into the parent's seed
 * material and starts a fresh generator, whatever the parent has already produced. A
 * tensor's stream is `createRng(seed).fork(tensorName)` (see `tensorRng`), and a model's
 * stream inside it is `.fork(modelId)`, so results do not depend on the order in which
 * tensors or models are processed.
 *
 * This is NOT bit-compatible with torch's generators (mergekit draws `torch.bernoulli` from
 * the global torch generator seeded by `--random-seed`), so DARE/DELLA masks match mergekit
 * in distribution only, never element by element.
 */

const GOLDEN = 0x9e3779b9;

/** 32-bit finaliser (splitmix32 / lowbias32 constants). */
function mix32(x: number): number {
  let z = x | 0;
  z ^= z >>> 16;
  z = Math.imul(z, 0x21f0aafd);
  z ^= z >>> 15;
  z = Math.imul(z, 0x735a2d97);
  z ^= z >>> 15;
  return z >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** rotl on int32 bit patterns (result as int32). */
function rotl32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** UTF-8 bytes of a string (manual, so this file needs no platform globals). */
function utf8(text: string): number[] {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else {
      out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    }
  }
  return out;
}

/**
 * 128-bit hash of a key (four 32-bit words): four differently-seeded multiplicative hashes
 * over the UTF-8 bytes, each finished with `mix32`. Stable across platforms.
 */
export function hashKey(key: string | number): [number, number, number, number] {
  const bytes = utf8(typeof key === 'number' ? `#${key}` : key);
  const h: number[] = [0x811c9dc5, 0x01000193 ^ GOLDEN, 0x3c6ef372, 0xa54ff53a];
  for (const b of bytes) {
    for (let i = 0; i < 4; i++) h[i] = Math.imul(h[i] ^ b, 0x01000193 + 2 * i * 0x10001);
  }
  const len = bytes.length;
  const [a = 0, b = 0, c = 0, d = 0] = h;
  return [mix32(a ^ len), mix32(b + len), mix32(c ^ GOLDEN), mix32(d - len)];
}

/** A deterministic random stream. */
export interface Rng {
  /** Uniform integer in [0, 2^32). */
  nextUint32(): number;
  /** Uniform float in [0, 1) with 24 random bits (exactly representable as float32). */
  nextFloat(): number;
  /** An independent stream derived from this stream's seed material and `key`. */
  fork(key: string | number): Rng;
  /**
   * `keep[j] = nextFloat() < p ? 1 : 0` for j < length: exactly `length` draws, the same ones
   * `length` calls of `nextFloat` would make (DARE's Bernoulli drop mask, drawn block by block).
   */
  fillBernoulli(p: number, keep: Uint8Array, length: number): void;
}

/** Four 32-bit words (128 bits of state or seed material). */
export type Uint32x4 = readonly [number, number, number, number];

/** Expand 128 bits of seed material into a xoshiro state (never all-zero). */
function expandSeed(material: Uint32x4): Uint32x4 {
  let c = material[0] ^ material[1] ^ material[2] ^ material[3];
  const next = (word: number): number => {
    c = (c + GOLDEN) | 0;
    return mix32(word ^ c);
  };
  const s: [number, number, number, number] = [next(material[0]), next(material[1]), next(material[2]), next(material[3])];
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // the all-zero state is a fixed point
  return s;
}

class Xoshiro128 implements Rng {
  /** State as int32 words (keeps the hot loop in small integers, no boxed doubles); see `liveState`. */
  readonly s = new Int32Array(4);

  constructor(
    private readonly material: Uint32x4,
    rawState?: Uint32x4,
  ) {
    this.s.set(rawState ?? expandSeed(material));
  }

  /** One xoshiro128** step; the output as an int32 bit pattern. */
  private step(): number {
    const s = this.s;
    const s0 = s[0];
    const s1 = s[1];
    const result = Math.imul(rotl32(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    const s2 = s[2] ^ s0;
    const s3 = s[3] ^ s1;
    s[1] = s1 ^ s2;
    s[0] = s0 ^ s3;
    s[2] = s2 ^ t;
    s[3] = rotl32(s3, 11);
    return result;
  }

  nextUint32(): number {
    return this.step() >>> 0;
  }

  nextFloat(): number {
    return (this.step() >>> 8) * 5.9604644775390625e-8; // 2^-24
  }

  fillBernoulli(p: number, keep: Uint8Array, length: number): void {
    const limit = bernoulliLimit(p);
    const s = this.s;
    // The state lives in locals for the loop (one `step` per element, the same update).
    let s0 = s[0];
    let s1 = s[1];
    let s2 = s[2];
    let s3 = s[3];
    for (let j = 0; j < length; j++) {
      const x = Math.imul(rotl32(Math.imul(s1, 5), 7), 9);
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl32(s3, 11);
      keep[j] = +(x >>> 8 < limit);
    }
    s[0] = s0;
    s[1] = s1;
    s[2] = s2;
    s[3] = s3;
  }

  fork(key: string | number): Rng {
    const h = hashKey(key);
    const m = this.material;
    const out: [number, number, number, number] = [0, 0, 0, 0];
    let carry = 0x6a09e667;
    for (let i = 0; i < 4; i++) {
      carry = mix32(m[i] ^ rotl(h[i], 5 + i) ^ carry);
      out[i] = carry;
    }
    return new Xoshiro128(out);
  }
}

/**
 * The live state of a generator made here (four int32 words, modified by its draws), so that a
 * kernel elsewhere (the WebAssembly DARE kernels, simd.ts) can continue exactly these draws and
 * hand the state back; undefined for other `Rng` implementations (test doubles).
 */
export function liveState(rng: Rng): Int32Array | undefined {
  return rng instanceof Xoshiro128 ? rng.s : undefined;
}

/** Jump tables by step count: column b (4 words) is the state `steps` updates after the unit state e_b. */
const jumpTables = new Map<number, Int32Array>();

/**
 * The xoshiro128** state `steps` updates after `state` (into `out`), as `steps` draws would leave it.
 * The update is linear over GF(2)¹²⁸, so the jumped state is the XOR of the columns of the unit
 * states whose bits are set (the table is built once per step count by stepping each unit state).
 * Lets the DARE kernels (simd.ts) run the two halves of a block's draws side by side.
 */
export function jumpState(state: Int32Array, steps: number, out: Int32Array): Int32Array {
  let table = jumpTables.get(steps);
  if (!table) {
    table = new Int32Array(128 * 4);
    for (let b = 0; b < 128; b++) {
      const w = b >> 5;
      const one = 1 << (b & 31);
      let s0 = w === 0 ? one : 0;
      let s1 = w === 1 ? one : 0;
      let s2 = w === 2 ? one : 0;
      let s3 = w === 3 ? one : 0;
      for (let k = 0; k < steps; k++) {
        // `Xoshiro128.step`'s state update
        const t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotl32(s3, 11);
      }
      table.set([s0, s1, s2, s3], 4 * b);
    }
    jumpTables.set(steps, table);
  }
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  for (let bit = 0; bit < 128; bit++) {
    const m = -((state[bit >> 5]! >>> (bit & 31)) & 1); // all ones when the bit is set (no branch: the bits are random)
    a ^= table[4 * bit]! & m;
    b ^= table[4 * bit + 1]! & m;
    c ^= table[4 * bit + 2]! & m;
    d ^= table[4 * bit + 3]! & m;
  }
  out[0] = a;
  out[1] = b;
  out[2] = c;
  out[3] = d;
  return out;
}

/**
 * A generator started from an explicit xoshiro128** state (for known-answer tests against
 * the reference implementation). Its forks derive from the same four words.
 */
export function xoshiro128FromState(state: Uint32x4): Rng {
  return new Xoshiro128(state, state);
}

/**
 * The integer form of a draw's `nextFloat() < p`: (x >>> 8) < limit for the draw's 32-bit output x.
 * nextFloat() < p ⟺ (x >>> 8)·2⁻²⁴ < p ⟺ (x >>> 8) < p·2²⁴ (exact: a power-of-two scaling)
 * ⟺ (x >>> 8) < ⌈p·2²⁴⌉, as x >>> 8 is an integer. p ≤ 0 or NaN keeps nothing, as `<` does; p ≥ 1
 * keeps everything (limit ≥ 2²⁴).
 */
export function bernoulliLimit(p: number): number {
  return p > 0 ? Math.min(Math.ceil(p * 16777216), 16777216) : 0;
}

/** Split a non-negative safe integer seed into two 32-bit words. */
function seedWords(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`random seed must be a non-negative safe integer, got ${seed}`);
  }
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/** Root stream for a run-level seed (mergekit's `--random-seed`). */
export function createRng(seed: number): Rng {
  const [lo, hi] = seedWords(seed);
  return new Xoshiro128([mix32(lo ^ 0x243f6a88), mix32(hi ^ 0x85a308d3), 0x13198a2e, 0x03707344]);
}

/** The stream of one tensor: depends only on the seed and the tensor name. */
export function tensorRng(seed: number, tensorName: string): Rng {
  return createRng(seed).fork(tensorName);
}
