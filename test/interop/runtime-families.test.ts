/**
 * Every decoder family and RoPE variant the runtime builds, against Hugging Face transformers:
 * tiny random checkpoints (test/helpers/tiny-models.ts) run through loadModelSession, and the
 * logits compared with AutoModelForCausalLM's (test/interop/hf_logits.py, float32, eager
 * attention) — a full forward pass, and prefill + token-by-token decoding through the KV cache.
 * Tolerance: max |Δlogit| ≤ 1e-4.
 *
 * transformers comes from the Python oracle venv (scripts/python-oracle.sh). Only when that script
 * fails (no network to PyPI, no compiler, …) are the tests skipped, with the reason; any failure
 * after it — transformers refusing a checkpoint, a crash, a mismatch — fails them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Decoder } from '../../app/runtime/decoder.js';
import type { HostTensor } from '../../app/runtime/host-tensor.js';
import { loadModelSession } from '../../app/runtime/model-session.js';
import { interopWorkDir, oracleEnv, oraclePython, tail } from '../helpers/oracle.js';
import { ROOT } from '../helpers/paths.js';
import { TINY_VARIANTS, tinyInputIds, writeJson, writeTinyModel, type TinyVariant } from '../helpers/tiny-models.js';

const TOLERANCE = 1e-4;
const BATCH = 2;
const HF_SCRIPT = join(ROOT, 'test', 'interop', 'hf_logits.py');

interface Logits { dims: number[]; data: number[] }
interface CaseResult {
  full?: Logits;
  incremental?: Logits;
  loading?: { missing: string[]; unexpected: string[]; mismatched: string[] };
  model_class?: string;
  error?: string;
}
interface Prepared {
  /** Set when the oracle could not be set up: the tests skip with this reason. */
  skip?: string;
  root: string;
  ids: Map<string, number[][]>;
  hf: Record<string, CaseResult>;
  versions: Record<string, string>;
}

const work = interopWorkDir('upcycle-families-', 'runtime families');
const seqLenOf = (v: TinyVariant) => v.seqLen ?? 16;
/** Prefill all but the last 4 tokens; decode those through the cache. */
const prefillOf = (v: TinyVariant) => seqLenOf(v) - 4;

let prepared: Promise<Prepared> | undefined;

/** Writes the tiny models, sets up the oracle and runs transformers once for all cases. */
function prepare(): Promise<Prepared> {
  prepared ??= (async () => {
    const root = join(work, 'models');
    const ids = new Map<string, number[][]>();
    for (const [i, v] of TINY_VARIANTS.entries()) {
      await writeTinyModel(join(root, v.name), v.config, 1000 + i);
      ids.set(v.name, tinyInputIds(BATCH, seqLenOf(v), Number(v.config['vocab_size']), 17 + i));
    }
    const { python, skip } = oraclePython('transformers comparison');
    if (!python) return { skip, root, ids, hf: {}, versions: {} };
    const job = join(work, 'job.json');
    const out = join(work, 'hf.json');
    writeJson(job, { cases: TINY_VARIANTS.map((v) => ({ name: v.name, dir: join(root, v.name), input_ids: ids.get(v.name), prefill: prefillOf(v) })) });
    const r = spawnSync(python, [HF_SCRIPT, job, out], { encoding: 'utf8', timeout: 20 * 60_000, maxBuffer: 64 << 20, env: oracleEnv() });
    // The oracle is installed, so a failure here is a real failure, not a reason to skip.
    assert.ok(r.status === 0 && existsSync(out), `hf_logits.py failed (exit ${r.status}):\n${tail(r.stderr ?? '', 40)}`);
    const parsed = JSON.parse(readFileSync(out, 'utf8')) as { versions: Record<string, string>; cases: Record<string, CaseResult> };
    return { root, ids, hf: parsed.cases, versions: parsed.versions };
  })();
  return prepared;
}

function maxAbsDiff(got: Float32Array, want: Logits): number {
  assert.equal(got.length, want.data.length, 'logits sizes differ');
  let max = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want.data[i]!);
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

const int64 = (rows: number[][], f: (v: number, s: number) => number): HostTensor => ({
  dims: [rows.length, rows[0]!.length],
  data: BigInt64Array.from(rows.flatMap((r) => r.map((v, s) => BigInt(f(v, s))))),
});

for (const variant of TINY_VARIANTS) {
  test(`${variant.name} matches transformers: ${variant.what}`, async (t) => {
    const p = await prepare();
    if (p.skip) {
      t.skip(p.skip);
      return;
    }
    const hf = p.hf[variant.name];
    assert.ok(hf, `no transformers result for ${variant.name}`);
    assert.equal(hf.error, undefined, `transformers failed on ${variant.name}: ${hf.error}`);
    const loading = hf.loading!;
    assert.deepEqual({ missing: loading.missing, unexpected: loading.unexpected, mismatched: loading.mismatched }, { missing: [], unexpected: [], mismatched: [] },
      'transformers and our architecture tables disagree about the tensors');
    const dir = join(p.root, variant.name);
    const ids = p.ids.get(variant.name)!;
    const S = seqLenOf(variant);
    const V = Number(variant.config['vocab_size']);

    // Full forward pass, no cache.
    const plain = await loadModelSession(dir, { maxPositions: variant.maxPositions });
    let full: number;
    try {
      const out = await plain.session.run({ input_ids: int64(ids, (v) => v), position_ids: int64(ids, (_, s) => s) }, ['logits']);
      assert.deepEqual(out['logits']!.dims, [BATCH, S, V]);
      full = maxAbsDiff(out['logits']!.data as Float32Array, hf.full!);
    } finally {
      await plain.session.release();
    }

    // Prefill, then one token at a time through the KV cache.
    const cached = await loadModelSession(dir, { kvCache: true, maxPositions: variant.maxPositions });
    let incremental: number;
    try {
      const dec = new Decoder(cached);
      const P = prefillOf(variant);
      const got = new Float32Array(BATCH * S * V);
      const put = (logits: Float32Array, from: number, len: number) => {
        for (let b = 0; b < BATCH; b++) got.set(logits.subarray(b * len * V, (b + 1) * len * V), (b * S + from) * V);
      };
      let r = await dec.forward(ids.map((row) => row.slice(0, P)));
      put(r.logits, 0, P);
      for (let s = P; s < S; s++) {
        r = await dec.forward(ids.map((row) => [row[s]!]), s, r.present);
        put(r.logits, s, 1);
      }
      incremental = maxAbsDiff(got, hf.incremental!);
    } finally {
      await cached.session.release();
    }

    t.diagnostic(`max |Δlogit| full ${full.toExponential(2)}, KV-cache decode ${incremental.toExponential(2)} (transformers ${p.versions['transformers']}, ${hf.model_class})`);
    assert.ok(full <= TOLERANCE, `${variant.name}: full forward max |Δlogit| = ${full} > ${TOLERANCE}`);
    assert.ok(incremental <= TOLERANCE, `${variant.name}: KV-cache decoding max |Δlogit| = ${incremental} > ${TOLERANCE}`);
  });
}
