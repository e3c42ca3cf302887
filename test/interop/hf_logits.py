"""Reference logits from Hugging Face transformers, for test/interop/runtime-families.test.ts.

    python hf_logits.py JOB.json OUT.json

JOB.json: {"cases": [{"name": str, "dir": str, "input_ids": [[int]], "prefill": int}]}
For each case the folder is loaded with AutoModelForCausalLM (float32, eager attention, CPU) and
two logits tensors [B, S, V] are computed:
  full         one forward pass over input_ids (use_cache=False);
  incremental  a fresh model: forward over input_ids[:, :prefill] with use_cache=True, then the
               remaining tokens one at a time through the returned cache (what generation does).
A fresh model is loaded for each mode because dynamic RoPE keeps state between calls.

OUT.json: {"versions": {...}, "cases": {name: {"full": {"dims", "data"}, "incremental": ...,
"loading": {"missing", "unexpected", "mismatched"}} | {"error": str}}}. Loading problems are
reported, not raised: the caller decides. Everything else goes to stderr.
"""

import json
import sys
import traceback


def tensor_json(t):
    t = t.detach().to("cpu").float().contiguous()
    return {"dims": list(t.shape), "data": t.reshape(-1).tolist()}


def load(path):
    import torch
    from transformers import AutoModelForCausalLM

    model, info = AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    model.eval()
    loading = {
        "missing": sorted(info.get("missing_keys", [])),
        "unexpected": sorted(info.get("unexpected_keys", [])),
        "mismatched": sorted(str(m) for m in info.get("mismatched_keys", [])),
    }
    return model, loading


def run_case(case):
    import torch

    ids = torch.tensor(case["input_ids"], dtype=torch.long)
    prefill = int(case["prefill"])
    with torch.no_grad():
        model, loading = load(case["dir"])
        full = model(input_ids=ids, use_cache=False).logits
        model, _ = load(case["dir"])
        out = model(input_ids=ids[:, :prefill], use_cache=True)
        parts = [out.logits]
        past = out.past_key_values
        for t in range(prefill, ids.shape[1]):
            out = model(input_ids=ids[:, t : t + 1], past_key_values=past, use_cache=True)
            past = out.past_key_values
            parts.append(out.logits)
        incremental = torch.cat(parts, dim=1)
    return {
        "full": tensor_json(full),
        "incremental": tensor_json(incremental),
        "loading": loading,
        "model_class": type(model).__name__,
    }


def main():
    job_path, out_path = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    result = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__}, "cases": {}}
    for case in job["cases"]:
        try:
            result["cases"][case["name"]] = run_case(case)
        except Exception as e:  # reported per case; the caller fails that case with this message
            traceback.print_exc(file=sys.stderr)
            result["cases"][case["name"]] = {"error": f"{type(e).__name__}: {e}"}
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
