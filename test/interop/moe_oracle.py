"""transformers logits and mergekit-moe builds, for test/interop/moe-transformers.test.ts.

    python moe_oracle.py JOB.json OUT.json

JOB.json: {"mergekit_moe": [{"name": str, "config": str (YAML path), "out": str}],
           "logits": [{"name": str, "dir": str, "inputs": [[int]], "ties_probe": bool}],
           "logits_from": str (optional)}
The mergekit-moe cases run first. With "logits_from", the logits cases are read from that JSON file
({"logits": [...]}) once it exists, so the caller can build its models while this process imports
torch and runs mergekit-moe; the wait ends early if the caller goes away.

logits: each folder is loaded with AutoModelForCausalLM (float32, eager attention, CPU,
output_loading_info=True) and every input sequence runs as its own batch of one (no padding, no
attention mask): {"logits": [{"dims", "data"}], "loading": {"missing", "unexpected", "mismatched"},
"config_error": str | null, "config_fixes": [str], "warnings": [str], "model_class": str}.
With ties_probe, "logits_lower_index_ties" holds the logits computed again with torch.topk breaking
ties toward the lower index (the rule of ONNX TopK), to tell tie-breaking apart from other causes.
`warnings` holds what transformers logged at WARNING or above while loading (e.g. "Some weights of
... were not initialized") and Python warnings raised then. `config_error` is set when transformers
refused config.json as written because a float field holds an integer (JSON `0` for 0.0): the model
is then loaded through a patched copy of config.json (`config_fixes` names the fields), so the
logits can still be compared, and the caller reports the refusal.

mergekit_moe: what `mergekit-moe CONFIG OUT --device cpu` does (mergekit.scripts.moe.build), in this
process: {"out": str, "seconds": float}.

Anything that fails is reported per case as {"error": str}; the caller decides. Logs go to stderr.
"""

import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings


def tensor_json(t):
    t = t.detach().to("cpu").float().contiguous()
    return {"dims": list(t.shape), "data": t.reshape(-1).tolist()}


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(f"{record.name}: {record.getMessage()}")


FLOAT_AS_INT = re.compile(r"Field '(\w+)' expected float, got int")


def load_model(path):
    """from_pretrained on the folder as written; when transformers' strict config dataclasses refuse
    an integer for a float field (JSON `0` for 0.0), the refusal is recorded and the folder is loaded
    again through a copy of config.json with those fields as floats (weights linked, not copied), so
    the numbers can still be compared."""
    import torch
    from transformers import AutoModelForCausalLM

    with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
        raw = json.load(f)
    config_error, fixes, folder, tmp = None, [], path, None
    try:
        for _ in range(20):
            try:
                model, info = AutoModelForCausalLM.from_pretrained(
                    folder, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
                )
                return model, info, config_error, fixes
            except Exception as e:  # noqa: BLE001 - only the float-as-int refusal is retried
                m = FLOAT_AS_INT.search(str(e))
                if not m or m.group(1) not in raw or m.group(1) in fixes:
                    raise
                config_error = config_error or f"{type(e).__name__}: {e}"
                fixes.append(m.group(1))
                raw[m.group(1)] = float(raw[m.group(1)])
                if tmp is None:
                    tmp = tempfile.mkdtemp(prefix="moe-oracle-")
                    for name in os.listdir(path):
                        if name != "config.json":
                            os.symlink(os.path.join(os.path.abspath(path), name), os.path.join(tmp, name))
                    folder = tmp
                with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
                    json.dump(raw, f)
        raise RuntimeError(f"config.json still refused after fixing {fixes}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def logits_case(case):
    import torch
    from transformers.utils import logging as hf_logging

    collect = Collect()
    hf_logging.add_handler(collect)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, info, config_error, fixes = load_model(case["dir"])
    finally:
        hf_logging.remove_handler(collect)
    model.eval()

    def run():
        out = []
        with torch.no_grad():
            for seq in case["inputs"]:
                ids = torch.tensor([seq], dtype=torch.long)
                out.append(tensor_json(model(input_ids=ids, use_cache=False).logits[0]))
        return out

    result = {"logits": run()}
    if case.get("ties_probe"):
        # The same model with torch.topk breaking ties toward the lower index (ONNX TopK's rule).
        topk = torch.topk

        def lower_index_topk(x, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - torch's signature
            idx = torch.sort(x, dim=dim, descending=largest, stable=True).indices.narrow(dim, 0, k)
            return torch.return_types.topk((x.gather(dim, idx), idx))

        torch.topk = lower_index_topk
        try:
            result["logits_lower_index_ties"] = run()
        finally:
            torch.topk = topk
    return {
        **result,
        "loading": {
            "missing": sorted(info.get("missing_keys", [])),
            "unexpected": sorted(info.get("unexpected_keys", [])),
            "mismatched": sorted(str(m) for m in info.get("mismatched_keys", [])),
        },
        "config_error": config_error,
        "config_fixes": fixes,
        "warnings": [m for m in collect.messages if not FLOAT_AS_INT.search(m)]
        + [f"{w.category.__name__}: {w.message}" for w in caught],
        "model_class": type(model).__name__,
    }


def mergekit_moe_case(case):
    import yaml
    from mergekit.merge import MergeOptions
    from mergekit.moe.config import MoEMergeConfig
    from mergekit.scripts.moe import build

    t0 = time.perf_counter()
    with open(case["config"], encoding="utf-8") as f:
        config = MoEMergeConfig.model_validate(yaml.safe_load(f))
    build(config, out_path=case["out"], merge_options=MergeOptions(quiet=True), device="cpu")
    return {"out": case["out"], "seconds": time.perf_counter() - t0}


def main():
    job_path, out_path = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import importlib.metadata as md

    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    result = {
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "mergekit": md.version("mergekit")},
        "logits": {},
        "mergekit_moe": {},
    }
    for key, run in (("mergekit_moe", mergekit_moe_case), ("logits", logits_case)):
        if key == "logits" and job.get("logits_from"):
            parent = os.getppid()
            while not os.path.exists(job["logits_from"]):
                if os.getppid() != parent:
                    sys.exit("moe_oracle.py: the caller exited before writing " + job["logits_from"])
                time.sleep(0.2)
            with open(job["logits_from"]) as f:
                job["logits"] = json.load(f)["logits"]
        for case in job.get(key, []):
            try:
                result[key][case["name"]] = run(case)
            except BaseException as e:  # noqa: BLE001 - reported per case (mergekit exits on bad configs)
                traceback.print_exc(file=sys.stderr)
                result[key][case["name"]] = {"error": f"{type(e).__name__}: {e}"}
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
