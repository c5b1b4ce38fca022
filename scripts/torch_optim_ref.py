#!/usr/bin/env python3
"""Reference values for rltrain's optimizer tests, computed with PyTorch.

Reads one JSON object on stdin and writes one on stdout.

  {"op": "adamw", "param": [...], "grads": [[...], ...], "lr": [...],
   "beta1": b1, "beta2": b2, "eps": e, "weight_decay": wd}
    runs len(grads) steps of torch.optim.AdamW (step k uses lr[k]) on a
    float32 tensor and returns {"param": [...], "exp_avg": [...],
    "exp_avg_sq": [...]}.

  {"op": "policy_loss", "hidden": [[...]], "w": [[...]], "targets": [...],
   "inv_temp": t, "old": [...], "ref": [...], "adv": [...], "mask": [...],
   "offsets": [...], "truncated": [...], "variants": [{...}, ...]}
    evaluates the clipped-surrogate policy loss (GRPO/DAPO/Dr. GRPO family)
    of a one-layer LM head, logits = t * hidden @ w.T, for each variant
    (eps_low, eps_high, clip_c, beta, kl, entropy_coef, agg, mask_truncated,
    tokens, seqs, max_len) and returns [{"loss": l, "d_hidden": [[...]],
    "d_w": [[...]]}, ...] with the gradients from autograd.

  {"op": "model_policy_loss", "model": dir, "ids": [[...]], "lens": [...],
   "inv_temp": t, "old", "ref", "adv", "mask" (flattened B*T), "offsets",
   "truncated", "variants": [{...}, ...]}
    the same loss on a whole decoder loaded with scripts/torch_ref.py;
    returns [{"loss": l, "grads": {hf_name: [...]}}, ...].
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


def kl_estimate(kind, x):
    # x = ref - logp
    if kind == "k1":
        return -x
    if kind == "k2":
        return 0.5 * x * x
    x = torch.clamp(x, -20, 20)
    return torch.clamp(torch.exp(x) - x - 1, max=10)


def surrogate_loss(logp, entropy, old, ref, adv, mask, offsets, truncated, v):
    """The clipped-surrogate loss of one variant from per-token tensors."""
    mask = mask.clone()
    if v["mask_truncated"]:
        for i, trunc in enumerate(truncated):
            if trunc:
                mask[offsets[i]:offsets[i + 1]] = 0
    ratio = torch.exp(logp - old)
    pg1 = -adv * ratio
    pg2 = -adv * torch.clamp(ratio, 1 - v["eps_low"], 1 + v["eps_high"])
    pg = torch.maximum(pg1, pg2)
    if v["clip_c"] > 1:
        pg = torch.where(adv < 0, torch.minimum(pg, -v["clip_c"] * adv), pg)
    per_token = pg - v["entropy_coef"] * entropy
    if v["beta"] > 0:
        per_token = per_token + v["beta"] * kl_estimate(v["kl"], ref - logp)
    masked = torch.where(mask > 0, per_token * mask, torch.zeros_like(per_token))
    agg = v["agg"]
    if agg == "token-mean":
        return masked.sum() / v["tokens"]
    seq_terms = []
    for i in range(len(offsets) - 1):
        lo, hi = offsets[i], offsets[i + 1]
        n = mask[lo:hi].sum()
        if n == 0:
            continue
        s = masked[lo:hi].sum()
        if agg == "seq-mean-token-mean":
            s = s / n
        seq_terms.append(s)
    total = torch.stack(seq_terms).sum()
    if agg == "seq-mean-token-sum-norm":
        return total / (v["seqs"] * v["max_len"])
    return total / v["seqs"]


def token_inputs(req):
    return (torch.tensor(req["old"], dtype=torch.float32), torch.tensor(req["ref"], dtype=torch.float32),
            torch.tensor(req["adv"], dtype=torch.float32), torch.tensor(req["mask"], dtype=torch.float32))


def policy_loss(req):
    out = []
    targets = torch.tensor(req["targets"], dtype=torch.long)
    old, ref, adv, mask = token_inputs(req)
    for v in req["variants"]:
        hidden = torch.tensor(req["hidden"], dtype=torch.float32, requires_grad=True)
        w = torch.tensor(req["w"], dtype=torch.float32, requires_grad=True)
        logits = req["inv_temp"] * hidden @ w.T
        logp_all = torch.log_softmax(logits, dim=-1)
        logp = logp_all.gather(1, targets[:, None])[:, 0]
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        loss = surrogate_loss(logp, entropy, old, ref, adv, mask, req["offsets"], req["truncated"], v)
        loss.backward()
        out.append({"loss": loss.item(), "d_hidden": hidden.grad.tolist(),
                    "d_w": w.grad.tolist()})
    return out


def model_policy_loss(req):
    """The same loss on a whole decoder read from req["model"] with
    scripts/torch_ref.py: ids [B][T] right-padded to lens, token t of row b
    predicting ids[b][t+1]; per-token inputs are flattened [B*T]."""
    import torch_ref  # the decoder reference next to this script

    model = torch_ref.load_model(req["model"])
    ids = torch.tensor(req["ids"], dtype=torch.long)
    lens = torch.tensor(req["lens"], dtype=torch.long)
    b, t = ids.shape
    valid = torch.arange(t)[None, :] < lens[:, None]
    targets = torch.cat((ids[:, 1:], torch.zeros(b, 1, dtype=torch.long)), dim=1).reshape(-1)
    old, ref, adv, mask = token_inputs(req)
    out = []
    for v in req["variants"]:
        model.zero_grad(set_to_none=True)
        logits, _ = model(ids, key_valid=valid)
        logp_all = torch.log_softmax(req["inv_temp"] * logits, dim=-1).reshape(b * t, -1)
        logp = logp_all.gather(1, targets[:, None])[:, 0]
        entropy = -(logp_all.exp() * logp_all).sum(-1)
        loss = surrogate_loss(logp, entropy, old, ref, adv, mask, req["offsets"], req["truncated"], v)
        loss.backward()
        out.append({"loss": loss.item(),
                    "grads": {n: p.grad.reshape(-1).tolist() for n, p in model.named_parameters()}})
    return out


def main():
    req = json.load(sys.stdin)
    ops = {"adamw": adamw, "policy_loss": policy_loss, "model_policy_loss": model_policy_loss}
    if req.get("op") not in ops:
        sys.exit("unknown op %r" % req.get("op"))
    torch.set_num_threads(1)
    json.dump(ops[req["op"]](req), sys.stdout)


if __name__ == "__main__":
    main()
