#!/usr/bin/python3
"""Times PyTorch on the same Llama-family model as scripts/torch_ref.py, as
the baseline that rltrain's own benchmarks are compared with.

  --mode train   forward + next-token cross-entropy + backward + AdamW step
                 on a random [batch, seq] batch (the default)
  --mode decode  greedy KV-cached generation: prefill a [batch, prompt-len]
                 prompt, then --new-tokens single-token steps (--cache
                 static: a preallocated cache instead of torch.cat)

Prints one JSON line, e.g.
  {"impl": "torch", "mode": "train", "threads": 1, "ms_per_step": 510.2,
   "tokens_per_s": 4014.0, "peak_rss_mb": 612.5, ...}
with the median over --steps timed repetitions after --warmup untimed ones.

Threads: the script measures whatever environment it runs in. PyTorch's
intra-op pool follows OMP_NUM_THREADS (torch.set_num_threads), but Debian's
torch does its GEMMs in OpenBLAS, whose pool follows OPENBLAS_NUM_THREADS
only; both are reported. On our 2-core machines the fastest setting was
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=2.
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402  (needs the path tweak above)

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")


def build_model(args):
    if args.model:
        return torch_ref.load_model(args.model)
    raw = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": args.hidden,
        "intermediate_size": args.ffn,
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim or args.hidden // args.heads,
        "vocab_size": args.vocab,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": args.tie,
    }
    model = torch_ref.CausalLM(torch_ref.Config(raw))
    torch_ref.init_weights(model, args.seed)
    return model


def bench_train(model, args):
    cfg = model.cfg
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, cfg.vocab, (args.batch, args.seq), generator=g)
    # Next-token targets with the last position ignored: cheaper than
    # slicing the logits, whose backward would materialise a zero tensor.
    targets = torch.cat((ids[:, 1:], torch.full((args.batch, 1), -100)), dim=1).reshape(-1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    times = []
    loss = None
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        logits, _ = model(ids)
        loss = F.cross_entropy(logits.view(-1, cfg.vocab), targets, ignore_index=-100)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - start
        if i >= args.warmup:
            times.append(elapsed)
    ms = statistics.median(times) * 1e3
    return {
        "ms_per_step": round(ms, 2),
        "ms_min": round(min(times) * 1e3, 2),
        "tokens_per_s": round(args.batch * args.seq / (ms / 1e3), 1),
        "final_loss": round(float(loss), 4),
    }


class StaticCache:
    """A preallocated KV cache for --cache static: keys and values of every
    layer live in [batch, kv_heads, max_len, head_dim] tensors written in
    place, where torch_ref's forward (like Hugging Face's DynamicCache)
    concatenates the whole past with each new token, copying it every
    step. Only the last position goes through the final norm and the LM
    head. Plain Llama layers only (no sliding window)."""

    def __init__(self, model, batch, max_len):
        cfg = model.cfg
        if any(layer.self_attn.window is not None for layer in model.model.layers):
            raise torch_ref.RefError("--cache static does not handle sliding-window layers")
        self.model = model
        shape = (batch, cfg.kv_heads, max_len, cfg.head_dim)
        self.k = [torch.empty(shape) for _ in range(cfg.layers)]
        self.v = [torch.empty(shape) for _ in range(cfg.layers)]
        inv = torch_ref.rope_inv_freq(cfg, torch.float32)
        self.cos, self.sin = torch_ref.rope_cos_sin(inv, torch.arange(max_len))

    def forward(self, ids, pos):
        """Logits [B, V] after ids [B, T] placed at positions pos..pos+T-1."""
        m, cfg = self.model, self.model.cfg
        b, t = ids.shape
        hd, rep = cfg.head_dim, cfg.heads // cfg.kv_heads
        s = pos + t
        cos, sin = self.cos[pos:s], self.sin[pos:s]
        mask = None
        if t > 1:
            q_pos = torch.arange(pos, s)
            mask = torch.arange(s)[None, :] > q_pos[:, None]
        x = m.model.embed_tokens(ids)
        for i, layer in enumerate(m.model.layers):
            att = layer.self_attn
            h = layer.input_layernorm(x)
            q = att.q_proj(h).view(b, t, cfg.heads, hd)
            k = att.k_proj(h).view(b, t, cfg.kv_heads, hd)
            v = att.v_proj(h).view(b, t, cfg.kv_heads, hd)
            if cfg.qk_norm:
                q, k = att.q_norm(q), att.k_norm(k)
            q = torch_ref.apply_rope(q.transpose(1, 2), cos, sin)
            self.k[i][:, :, pos:s] = torch_ref.apply_rope(k.transpose(1, 2), cos, sin)
            self.v[i][:, :, pos:s] = v.transpose(1, 2)
            keys, values = self.k[i][:, :, :s], self.v[i][:, :, :s]
            qg = q.reshape(b, cfg.kv_heads, rep * t, hd)
            scores = torch.matmul(qg, keys.transpose(2, 3)).view(b, cfg.heads, t, s) / math.sqrt(hd)
            if mask is not None:
                scores = scores.masked_fill(mask, float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            out = torch.matmul(probs.view(b, cfg.kv_heads, rep * t, s), values)
            out = out.view(b, cfg.heads, t, hd).transpose(1, 2).reshape(b, t, cfg.heads * hd)
            x = x + att.o_proj(out)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return F.linear(m.model.norm(x[:, -1]), m.head_weight())


def bench_decode(model, args):
    cfg = model.cfg
    g = torch.Generator().manual_seed(args.seed)
    prompt = torch.randint(0, cfg.vocab, (args.batch, args.prompt_len), generator=g)
    prefill, decode = [], []
    cache = StaticCache(model, args.batch, args.prompt_len + args.new_tokens) if args.cache == "static" else None
    tokens = []
    with torch.no_grad():
        for i in range(args.warmup + args.steps):
            tokens = []
            t0 = time.perf_counter()
            if cache is None:
                logits, past = model(prompt)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
            else:
                nxt = cache.forward(prompt, 0).argmax(-1, keepdim=True)
            t1 = time.perf_counter()
            for step in range(args.new_tokens - 1):
                tokens.append(nxt)
                if cache is None:
                    logits, past = model(nxt, past=past)
                    nxt = logits[:, -1].argmax(-1, keepdim=True)
                else:
                    nxt = cache.forward(nxt, args.prompt_len + step).argmax(-1, keepdim=True)
            t2 = time.perf_counter()
            tokens.append(nxt)
            if i >= args.warmup:
                prefill.append(t1 - t0)
                decode.append(t2 - t1)
    steps = max(1, args.new_tokens - 1)
    d = statistics.median(decode)
    # A checksum of the greedy tokens, to compare the two cache modes.
    ids = torch.cat(tokens, dim=1)
    checksum = int((ids * torch.arange(1, ids.numel() + 1).view(ids.shape)).sum()) % 1000000007
    return {
        "cache": args.cache,
        "prefill_ms": round(statistics.median(prefill) * 1e3, 2),
        "ms_per_token_step": round(d / steps * 1e3, 3),
        "tokens_per_s": round(args.batch * steps / d, 1) if d > 0 else None,
        "tokens_checksum": checksum,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("train", "decode"), default="train")
    ap.add_argument("--model", default="", help="benchmark this checkpoint directory instead of a random model")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=0, help="default hidden/heads")
    ap.add_argument("--ffn", type=int, default=768)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--tie", action="store_true", help="tie the LM head to the embedding")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256, help="train: sequence length")
    ap.add_argument("--prompt-len", type=int, default=64, help="decode: prompt length")
    ap.add_argument("--new-tokens", type=int, default=64, help="decode: tokens generated per row")
    ap.add_argument("--cache", choices=("dynamic", "static"), default="dynamic",
                    help="decode: torch_ref's forward concatenating the past each step (as Hugging Face's "
                         "DynamicCache does), or a preallocated cache written in place")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for name in ("batch", "seq", "prompt_len", "new_tokens", "steps"):
        if getattr(args, name) <= 0:
            ap.error("--%s must be positive" % name.replace("_", "-"))
    if args.warmup < 0:
        ap.error("--warmup must be >= 0")

    try:
        model = build_model(args)
    except torch_ref.RefError as e:
        print("torch_bench: error: %s" % e, file=sys.stderr)
        return 1
    cfg = model.cfg
    result = {"impl": "torch", "mode": args.mode, "torch": torch.__version__,
              "threads": torch.get_num_threads(),
              "env": {k: os.environ.get(k) for k in ENV_VARS if k in os.environ},
              "config": {"hidden": cfg.hidden, "layers": cfg.layers, "heads": cfg.heads,
                         "kv_heads": cfg.kv_heads, "head_dim": cfg.head_dim, "ffn": cfg.ffn,
                         "vocab": cfg.vocab, "tie": cfg.tie, "batch": args.batch},
              "params": sum(p.numel() for p in model.parameters())}
    if args.mode == "train":
        result["config"]["seq"] = args.seq
        result.update(bench_train(model, args))
    else:
        result["config"].update(prompt_len=args.prompt_len, new_tokens=args.new_tokens)
        result.update(bench_decode(model, args))
    result["steps"] = args.steps
    # ru_maxrss is in KiB on Linux.
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
