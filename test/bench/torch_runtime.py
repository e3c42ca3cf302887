"""PyTorch side of test/bench/runtime.bench.ts: the same checkpoint and the same measurements in
transformers (float32, CPU, torch.set_num_threads(THREADS)).

    python torch_runtime.py JOB.json

JOB.json: {"dir", "threads", "attn", "prefill_ids": [int], "prompt_ids": [int], "new_tokens", "repeats"}
Prints one JSON line on stdout: load seconds, prefill seconds (per repeat) with the logits of every
position and with logits_to_keep=1 (as generate() runs a prompt), decode with and without use_cache
(seconds of the first step = the prompt's prefill, and of each remaining step; logits_to_keep=1 as in
generate()), greedy tokens, and RSS (current, peak after the generation phases, and peak).
The generation phases run first so that the full-logits forwards do not hide their peak.
"""

import json
import resource
import sys
import time


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    rss_start = rss_now()
    import torch
    from transformers import LlamaForCausalLM

    torch.set_num_threads(int(job["threads"]))
    rss_import = rss_now()
    t0 = time.perf_counter()
    model = LlamaForCausalLM.from_pretrained(job["dir"], dtype=torch.float32, attn_implementation=job["attn"])
    model.eval()
    load_s = time.perf_counter() - t0
    rss_loaded = rss_now()

    def timed(fn):
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    prefill_ids = torch.tensor([job["prefill_ids"]], dtype=torch.long)

    def prefill(keep):
        times = []
        with torch.inference_mode():
            model(input_ids=prefill_ids, use_cache=False, logits_to_keep=keep)  # warm-up
            for _ in range(int(job["repeats"])):
                s, _ = timed(lambda: model(input_ids=prefill_ids, use_cache=False, logits_to_keep=keep))
                times.append(s)
        return times

    def generate(use_cache):
        ids = list(job["prompt_ids"])
        new = []
        past = None
        times = []
        with torch.inference_mode():
            for step in range(int(job["new_tokens"])):
                t = time.perf_counter()
                if use_cache:
                    inp = torch.tensor([ids if past is None else ids[-1:]], dtype=torch.long)
                    out = model(input_ids=inp, past_key_values=past, use_cache=True, logits_to_keep=1)
                    past = out.past_key_values
                else:
                    out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False, logits_to_keep=1)
                tok = int(torch.argmax(out.logits[0, -1]).item())
                times.append(time.perf_counter() - t)
                ids.append(tok)
                new.append(tok)
        return {"first_s": times[0], "rest_s": sum(times[1:]), "step_s": times[1:], "steps": len(times), "tokens": new}

    prefill_gen_s = prefill(1)
    generate(True)  # warm-up of the single-token path
    cached = generate(True)
    uncached = generate(False)
    rss_peak_gen = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    prefill_s = prefill(0)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "attn": job["attn"],
        "load_s": load_s,
        "prefill_s": prefill_s,
        "prefill_gen_s": prefill_gen_s,
        "decode_cache": cached,
        "decode_nocache": uncached,
        "rss_start": rss_start,
        "rss_import": rss_import,
        "rss_loaded": rss_loaded,
        "rss_end": rss_now(),
        "rss_peak_gen": rss_peak_gen,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }))


if __name__ == "__main__":
    main()
