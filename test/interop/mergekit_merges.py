"""Reference merges from mergekit itself, for test/interop/mergekit-parity.test.ts.

    python mergekit_merges.py JOB.json OUT.json

JOB.json: {"lora_cache": str, "cases": [{"name": str, "config": str (YAML path), "out": str,
"seed": int | null}]}
Each case is what `mergekit-yaml CONFIG OUT --random-seed SEED --lora-merge-cache LORA_CACHE
--no-copy-tokenizer --no-write-model-card` does (mergekit.scripts.run_yaml), but all cases run in
one process: importing torch + transformers + mergekit takes 15-45 s on a loaded 2-core machine,
a tiny merge well under a second. Float32 on CPU, one thread per merge (deterministic sums).

OUT.json: {"versions": {...}, "cases": {name: {"out": str, "seconds": float} | {"error": str}}}.
A case that mergekit refuses is reported, not raised: the caller decides. Logs go to stderr.
"""

import json
import sys
import time
import traceback


def main():
    job_path, out_path = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import importlib.metadata as md

    import torch
    import transformers
    import yaml
    from mergekit.config import MergeConfiguration
    from mergekit.merge import run_merge
    from mergekit.options import MergeOptions

    torch.set_num_threads(1)
    result = {
        "versions": {"mergekit": md.version("mergekit"), "torch": torch.__version__, "transformers": transformers.__version__},
        "cases": {},
    }
    for case in job["cases"]:
        t0 = time.perf_counter()
        try:
            with open(case["config"], encoding="utf-8") as f:
                source = f.read()
            config = MergeConfiguration.model_validate(yaml.safe_load(source))
            options = MergeOptions(
                lora_merge_cache=job["lora_cache"],
                random_seed=case.get("seed"),
                copy_tokenizer=False,
                write_model_card=False,
                quiet=True,
            )
            run_merge(config, case["out"], options=options, config_source=source)
            result["cases"][case["name"]] = {"out": case["out"], "seconds": time.perf_counter() - t0}
        except BaseException as e:  # noqa: BLE001 - reported per case (SystemExit included)
            traceback.print_exc(file=sys.stderr)
            result["cases"][case["name"]] = {"error": f"{type(e).__name__}: {e}"}
    with open(out_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
