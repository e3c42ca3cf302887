/**
 * CMA-ES (Hansen & Ostermeier 2001; the (μ/μ_w, λ) form with rank-one and rank-μ updates of Hansen's
 * tutorial, arXiv 1604.00772). Minimises; deterministic for a seed. No maintained CMA-ES package exists
 * on npm (checked 2026-11), so this is a small, tested implementation of the tutorial's algorithm.
 */
import { createRng, type Rng } from './merge/index.js';

export interface CmaOptions {
  sigma0: number;
  popsize?: number;
  seed: number;
}

export class CmaEs {
  readonly n: number;
  readonly lambda: number;
  readonly mu: number;
  private readonly weights: number[];
  private readonly mueff: number;
  private readonly cc: number;
  private readonly cs: number;
  private readonly c1: number;
  private readonly cmu: number;
  private readonly damps: number;
  private readonly chiN: number;
  mean: number[];
  sigma: number;
  private C: number[][];
  private B: number[][];
  private D: number[];
  private pc: number[];
  private ps: number[];
  generation = 0;
  private readonly rng: Rng;
  private lastY: number[][] = [];

  constructor(x0: number[], opts: CmaOptions) {
    const n = x0.length;
    this.n = n;
    this.lambda = opts.popsize ?? 4 + Math.floor(3 * Math.log(n));
    this.mu = Math.floor(this.lambda / 2);
    const raw = Array.from({ length: this.mu }, (_, i) => Math.log(this.mu + 0.5) - Math.log(i + 1));
    const sum = raw.reduce((a, b) => a + b, 0);
    this.weights = raw.map((w) => w / sum);
    this.mueff = 1 / this.weights.reduce((a, w) => a + w * w, 0);
    this.cc = (4 + this.mueff / n) / (n + 4 + (2 * this.mueff) / n);
    this.cs = (this.mueff + 2) / (n + this.mueff + 5);
    this.c1 = 2 / ((n + 1.3) ** 2 + this.mueff);
    this.cmu = Math.min(1 - this.c1, (2 * (this.mueff - 2 + 1 / this.mueff)) / ((n + 2) ** 2 + this.mueff));
    this.damps = 1 + 2 * Math.max(0, Math.sqrt((this.mueff - 1) / (n + 1)) - 1) + this.cs;
    this.chiN = Math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    this.mean = [...x0];
    this.sigma = opts.sigma0;
    this.C = identity(n);
    this.B = identity(n);
    this.D = new Array<number>(n).fill(1);
    this.pc = new Array<number>(n).fill(0);
    this.ps = new Array<number>(n).fill(0);
    this.rng = createRng(opts.seed).fork('cma-es');
  }

  /** λ candidate points x = m + σ·B·D·z, z ~ N(0, I). */
  ask(): number[][] {
    const n = this.n;
    this.lastY = [];
    const xs: number[][] = [];
    for (let k = 0; k < this.lambda; k++) {
      const z = Array.from({ length: n }, () => gaussian(this.rng));
      const y = new Array<number>(n).fill(0);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) y[i]! += this.B[i]![j]! * this.D[j]! * z[j]!;
      this.lastY.push(y);
      xs.push(y.map((v, i) => this.mean[i]! + this.sigma * v));
    }
    return xs;
  }

  /** Updates the distribution from the last `ask()` points and their costs (lower is better). */
  tell(costs: number[]): void {
    const n = this.n;
    if (costs.length !== this.lambda) throw new Error(`tell() needs ${this.lambda} costs`);
    const order = costs.map((c, i) => i).sort((a, b) => costs[a]! - costs[b]! || a - b);
    const yw = new Array<number>(n).fill(0);
    for (let k = 0; k < this.mu; k++) for (let i = 0; i < n; i++) yw[i]! += this.weights[k]! * this.lastY[order[k]!]![i]!;
    for (let i = 0; i < n; i++) this.mean[i]! += this.sigma * yw[i]!;
    // C^{-1/2}·yw = B·D^{-1}·Bᵀ·yw
    const bty = new Array<number>(n).fill(0);
    for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) bty[j]! += this.B[i]![j]! * yw[i]!;
    const inv = new Array<number>(n).fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) inv[i]! += this.B[i]![j]! * (bty[j]! / this.D[j]!);
    const csn = Math.sqrt(this.cs * (2 - this.cs) * this.mueff);
    for (let i = 0; i < n; i++) this.ps[i] = (1 - this.cs) * this.ps[i]! + csn * inv[i]!;
    const psNorm = Math.hypot(...this.ps);
    this.generation++;
    const hsig = psNorm / Math.sqrt(1 - (1 - this.cs) ** (2 * this.generation)) / this.chiN < 1.4 + 2 / (n + 1) ? 1 : 0;
    const ccn = Math.sqrt(this.cc * (2 - this.cc) * this.mueff);
    for (let i = 0; i < n; i++) this.pc[i] = (1 - this.cc) * this.pc[i]! + hsig * ccn * yw[i]!;
    const c1a = this.c1 * (1 - (1 - hsig) * this.cc * (2 - this.cc));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let rankMu = 0;
        for (let k = 0; k < this.mu; k++) rankMu += this.weights[k]! * this.lastY[order[k]!]![i]! * this.lastY[order[k]!]![j]!;
        const v = (1 - c1a - this.cmu) * this.C[i]![j]! + this.c1 * this.pc[i]! * this.pc[j]! + this.cmu * rankMu;
        this.C[i]![j] = v;
        this.C[j]![i] = v;
      }
    }
    this.sigma *= Math.exp((this.cs / this.damps) * (psNorm / this.chiN - 1));
    const { values, vectors } = jacobiEigen(this.C);
    this.D = values.map((v) => Math.sqrt(Math.max(v, 1e-20)));
    this.B = vectors;
  }
}

function identity(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
}

export function gaussian(rng: Rng): number {
  const u1 = 1 - rng.nextFloat();
  const u2 = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: A = V·diag(values)·Vᵀ. */
export function jacobiEigen(A: number[][]): { values: number[]; vectors: number[][] } {
  const n = A.length;
  const a = A.map((r) => [...r]);
  const v = identity(n);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i]![j]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p]![q]!) < 1e-300) continue;
        const theta = (a[q]![q]! - a[p]![p]!) / (2 * a[p]![q]!);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k]![p]!;
          const akq = a[k]![q]!;
          a[k]![p] = c * akp - s * akq;
          a[k]![q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p]![k]!;
          const aqk = a[q]![k]!;
          a[p]![k] = c * apk - s * aqk;
          a[q]![k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k]![p]!;
          const vkq = v[k]![q]!;
          v[k]![p] = c * vkp - s * vkq;
          v[k]![q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: a.map((r, i) => r[i]!), vectors: v };
}
