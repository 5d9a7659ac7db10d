"""Deciding figures for a candidate model: int8 greedy CER on the cathy dev part and the keywords dev half."""
import json, sys
import numpy as np
sys.path.insert(0, "/work/main/benchmarks")
from accuracy import held_out
from decoder_speed import error_rates
from w2v2_onnx import Transcriber
model = sys.argv[1] if sys.argv[1] != "bundled" else None
t = Transcriber(model, precision="int8", threads=2) if model else Transcriber(threads=2)
out = {}
_, cathy = held_out("/work/shared/data/cathy:group=prompt_id,eval=0.1,dev=0.1,part=dev", 0)
_, kw = held_out("/tmp/kw/manifest.tsv:name=keywords_unused,role=eval", 0)
order = np.random.default_rng(0).permutation(len(kw)); kw_dev = [kw[i] for i in order[: len(kw) // 2]]
for name, rows in (("cathy_dev", cathy), ("keywords_dev_half", kw_dev)):
    hyps = [t.transcribe(p, decoder="greedy").text for p, _ in rows]
    out[name] = {"n": len(rows), **error_rates(hyps, [r for _, r in rows])}
    print(name, out[name], flush=True)
json.dump(out, open(sys.argv[2], "w"), indent=1)
