#!/usr/bin/env python3
"""Reference values for rltrain's optimizer tests, computed with PyTorch.

Reads one JSON object on stdin and writes one on stdout.

  {"op": "adamw", "param": [...], "grads": [[...], ...], "lr": [...],
   "beta1": b1, "beta2": b2, "eps": e, "weight_decay": wd}
    runs len(grads) steps of torch.optim.AdamW (step k uses lr[k]) on a
    float32 tensor and returns {"param": [...], "exp_avg": [...],
    "exp_avg_sq": [...]}.
"""
import json
import sys

import torch


def adamw(req):
    p = torch.nn.Parameter(torch.tensor(req["param"], dtype=torch.float32))
    opt = torch.optim.AdamW([p], lr=req["lr"][0], betas=(req["beta1"], req["beta2"]),
                            eps=req["eps"], weight_decay=req["weight_decay"])
    for g, lr in zip(req["grads"], req["lr"]):
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    st = opt.state[p]
    return {"param": p.detach().tolist(), "exp_avg": st["exp_avg"].tolist(),
            "exp_avg_sq": st["exp_avg_sq"].tolist()}


def main():
    req = json.load(sys.stdin)
    ops = {"adamw": adamw}
    if req.get("op") not in ops:
        sys.exit("unknown op %r" % req.get("op"))
    torch.set_num_threads(1)
    json.dump(ops[req["op"]](req), sys.stdout)


if __name__ == "__main__":
    main()
