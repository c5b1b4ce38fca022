#!/usr/bin/python3
"""Plain-PyTorch reference for the Llama-family decoder that rltrain implements.

It follows the Hugging Face `transformers` definitions of LlamaForCausalLM,
Qwen2ForCausalLM, Qwen3ForCausalLM and MistralForCausalLM, reads a HF
`config.json` and safetensors weights under HF tensor names, and writes
logits, loss, per-token log-probs and every gradient for the Go tests to
compare against. It needs only Debian's python3-torch and python3-numpy.

Commands:
  forward   logits/loss/logprobs (+ gradients) for a right-padded batch;
            with --adapter DIR, through a PEFT LoRA adapter (W + s*B*A on each
            targeted projection) and the gradients of its A and B matrices
  init      random weights for a config (tests and benchmarks)
  generate  greedy continuation, KV-cached (or recomputed with --no-cache)
  selftest  fast internal consistency checks (< 30 s)

Run `/usr/bin/python3 scripts/torch_ref.py COMMAND -h` for the flags.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402  (needs the path tweak above)


class RefError(ValueError):
    """A user error: bad config, bad input file, missing tensor."""


# --------------------------------------------------------------------------
# Config


ARCHS = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "MistralForCausalLM": "mistral",
}
MODEL_TYPES = {"llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "mistral": "mistral"}


class Config:
    """The subset of a HF config.json that the decoder's math depends on."""

    def __init__(self, raw):
        if not isinstance(raw, dict):
            raise RefError("config must be a JSON object")
        self.raw = raw

        def need(key):
            if key not in raw or raw[key] is None:
                raise RefError("config: missing %r" % key)
            return raw[key]

        archs = raw.get("architectures") or []
        family = None
        for a in archs:
            family = family or ARCHS.get(a)
        if family is None:
            family = MODEL_TYPES.get(raw.get("model_type", ""))
        if family is None:
            raise RefError("config: unsupported architectures %r / model_type %r (want one of %s)"
                           % (archs, raw.get("model_type"), ", ".join(sorted(ARCHS))))
        self.family = family
        self.hidden = int(need("hidden_size"))
        self.ffn = int(need("intermediate_size"))
        self.layers = int(need("num_hidden_layers"))
        self.heads = int(need("num_attention_heads"))
        self.kv_heads = int(raw.get("num_key_value_heads") or self.heads)
        self.head_dim = int(raw.get("head_dim") or self.hidden // self.heads)
        self.vocab = int(need("vocab_size"))
        self.eps = float(raw.get("rms_norm_eps", 1e-6))
        self.tie = bool(raw.get("tie_word_embeddings", False))
        # Which projections carry a bias, as each HF class builds them.
        attention_bias = bool(raw.get("attention_bias", False))
        if family == "qwen2":
            self.qkv_bias, self.o_bias = True, False
        elif family == "mistral":
            self.qkv_bias, self.o_bias = False, False
        else:
            self.qkv_bias, self.o_bias = attention_bias, attention_bias
        self.mlp_bias = bool(raw.get("mlp_bias", False)) and family == "llama"
        self.qk_norm = family == "qwen3"

        # Newer configs nest the RoPE settings in rope_parameters.
        rope = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
        self.rope_theta = float(raw.get("rope_theta") or rope.get("rope_theta") or 10000.0)
        self.rope_type = rope.get("rope_type") or rope.get("type") or "default"
        self.rope = rope
        if self.rope_type not in ("default", "linear", "llama3"):
            raise RefError("config: rope type %r is not supported (default, linear, llama3)"
                           % self.rope_type)
        if float(raw.get("partial_rotary_factor", 1.0)) != 1.0:
            raise RefError("config: partial_rotary_factor is not supported")

        if self.heads % self.kv_heads:
            raise RefError("config: num_attention_heads %d is not a multiple of num_key_value_heads %d"
                           % (self.heads, self.kv_heads))
        if self.head_dim % 2:
            raise RefError("config: head_dim %d must be even for RoPE" % self.head_dim)
        for name in ("hidden", "ffn", "layers", "heads", "kv_heads", "head_dim", "vocab"):
            if getattr(self, name) <= 0:
                raise RefError("config: %s must be positive" % name)
        self.sliding = self._sliding_layers(raw)

    def _sliding_layers(self, raw):
        """Per layer: the sliding-window size, or None for full attention."""
        window = raw.get("sliding_window")
        if self.family in ("qwen2", "qwen3") and not raw.get("use_sliding_window", False):
            window = None  # Qwen configs carry a window that is off unless enabled
        kinds = raw.get("layer_types")
        if kinds is not None:
            if len(kinds) != self.layers:
                raise RefError("config: layer_types has %d entries for %d layers" % (len(kinds), self.layers))
            return [int(window) if k == "sliding_attention" and window is not None else None
                    for k in kinds]
        if window is None:
            return [None] * self.layers
        if self.family == "mistral":
            return [int(window)] * self.layers
        if self.family in ("qwen2", "qwen3"):
            first = int(raw.get("max_window_layers", self.layers))
            return [int(window) if i >= first else None for i in range(self.layers)]
        return [None] * self.layers


def load_config(path):
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RefError("read config %s: %s" % (path, e)) from e
    return Config(raw)


# --------------------------------------------------------------------------
# RoPE


def rope_inv_freq(cfg, dtype):
    """Inverse frequencies as HF computes them (in float32 unless dtype is
    float64), including the linear and llama3 rescalings."""
    dim = cfg.head_dim
    idx = torch.arange(0, dim, 2, dtype=torch.int64).to(dtype)
    inv = 1.0 / (cfg.rope_theta ** (idx / dim))
    if cfg.rope_type == "linear":
        inv = inv / float(cfg.rope["factor"])
    elif cfg.rope_type == "llama3":
        r = cfg.rope
        try:
            factor = float(r["factor"])
            low = float(r["low_freq_factor"])
            high = float(r["high_freq_factor"])
            old_len = float(r["original_max_position_embeddings"])
        except KeyError as e:
            raise RefError("config: llama3 rope scaling is missing %s" % e) from e
        low_wavelen = old_len / low
        high_wavelen = old_len / high
        wavelen = 2 * math.pi / inv
        # Long wavelengths (low frequencies) are divided by factor, short
        # ones kept, and the band between interpolated smoothly.
        scaled = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def rope_cos_sin(inv_freq, positions):
    """cos/sin of shape [T, head_dim] in the rotate-half layout."""
    freqs = positions.to(inv_freq.dtype)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


# --------------------------------------------------------------------------
# Model. Module and attribute names reproduce the HF parameter names, so
# named_parameters() yields "model.layers.0.self_attn.q_proj.weight" etc.


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        # HF normalises half-precision inputs in float32; float64 stays.
        h = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class Attention(nn.Module):
    def __init__(self, cfg, window):
        super().__init__()
        self.cfg = cfg
        self.window = window
        d, hd = cfg.hidden, cfg.head_dim
        self.q_proj = nn.Linear(d, cfg.heads * hd, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(d, cfg.kv_heads * hd, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(d, cfg.kv_heads * hd, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.heads * hd, d, bias=cfg.o_bias)
        if cfg.qk_norm:
            self.q_norm = RMSNorm(hd, cfg.eps)
            self.k_norm = RMSNorm(hd, cfg.eps)

    def forward(self, x, cos, sin, q_pos, key_valid, past):
        """x [B,T,D]; cos/sin [T,hd]; q_pos [T] absolute positions; key_valid
        [B,S] or None; past (k, v) each [B,kvh,S-T,hd] or None."""
        cfg = self.cfg
        b, t, _ = x.shape
        hd = cfg.head_dim
        q = self.q_proj(x).view(b, t, cfg.heads, hd)
        k = self.k_proj(x).view(b, t, cfg.kv_heads, hd)
        v = self.v_proj(x).view(b, t, cfg.kv_heads, hd)
        if cfg.qk_norm:  # Qwen3: per-head RMSNorm before RoPE
            q = self.q_norm(q)
            k = self.k_norm(k)
        q = apply_rope(q.transpose(1, 2), cos, sin)
        k = apply_rope(k.transpose(1, 2), cos, sin)
        v = v.transpose(1, 2)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        s = k.shape[2]
        rep = cfg.heads // cfg.kv_heads
        # GQA: query head h reads KV head h // rep, as HF's repeat_kv. The
        # rep query heads of one KV head are stacked along the rows, which
        # gives the same products as repeating K/V without copying them.
        qg = q.reshape(b, cfg.kv_heads, rep * t, hd)
        scores = torch.matmul(qg, k.transpose(2, 3)).view(b, cfg.heads, t, s) / math.sqrt(hd)
        k_pos = torch.arange(s, device=x.device)
        allowed = k_pos[None, :] <= q_pos[:, None]  # [T,S] causal
        if self.window is not None:
            allowed = allowed & (q_pos[:, None] - k_pos[None, :] < self.window)
        allowed = allowed[None, None]
        if key_valid is not None:
            # Valid queries see only valid keys. Padding queries keep their
            # causal keys so that no row is fully masked (which would give
            # NaN); their outputs are discarded.
            q_valid = key_valid[:, s - t:]
            extra = key_valid[:, None, :] | ~q_valid[:, :, None]  # [B,T,S]
            allowed = allowed & extra[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs.view(b, cfg.kv_heads, rep * t, s), v)
        out = out.view(b, cfg.heads, t, hd).transpose(1, 2).reshape(b, t, cfg.heads * hd)
        return self.o_proj(out), present


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden, cfg.ffn, bias=cfg.mlp_bias)
        self.up_proj = nn.Linear(cfg.hidden, cfg.ffn, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(cfg.ffn, cfg.hidden, bias=cfg.mlp_bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg, window):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        self.self_attn = Attention(cfg, window)
        self.post_attention_layernorm = RMSNorm(cfg.hidden, cfg.eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, q_pos, key_valid, past):
        a, present = self.self_attn(self.input_layernorm(x), cos, sin, q_pos, key_valid, past)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, present


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.hidden)
        self.layers = nn.ModuleList(DecoderLayer(cfg, cfg.sliding[i]) for i in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.eps)


class CausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Decoder(cfg)
        if not cfg.tie:
            self.lm_head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)

    def head_weight(self):
        return self.model.embed_tokens.weight if self.cfg.tie else self.lm_head.weight

    def forward(self, ids, key_valid=None, past=None, hidden=None):
        """ids [B,T] -> (logits [B,T,V], present KV list).

        key_valid [B,S] marks the keys that may be attended to (S = past + T);
        past is the list returned by an earlier call for the same rows. If
        hidden is a list, the residual stream is appended to it after the
        embedding and after every layer, then the final-norm output.
        """
        pos0 = 0 if past is None else past[0][0].shape[2]
        t = ids.shape[1]
        q_pos = torch.arange(pos0, pos0 + t)
        dtype = self.model.embed_tokens.weight.dtype
        inv = rope_inv_freq(self.cfg, torch.float64 if dtype == torch.float64 else torch.float32)
        cos, sin = rope_cos_sin(inv, q_pos)
        cos, sin = cos.to(dtype), sin.to(dtype)
        x = self.model.embed_tokens(ids)
        keep = hidden.append if hidden is not None else (lambda _: None)
        keep(x)
        presents = []
        for i, layer in enumerate(self.model.layers):
            x, p = layer(x, cos, sin, q_pos, key_valid, None if past is None else past[i])
            presents.append(p)
            keep(x)
        x = self.model.norm(x)
        keep(x)
        return F.linear(x, self.head_weight()), presents


# --------------------------------------------------------------------------
# Weights


def read_weights(model_dir):
    """All tensors of DIR/model.safetensors or of a sharded checkpoint."""
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return safetensors_np.load(single)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(index):
        raise RefError("%s: no model.safetensors or model.safetensors.index.json" % model_dir)
    try:
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
    except (OSError, KeyError, json.JSONDecodeError) as e:
        raise RefError("read %s: %s" % (index, e)) from e
    out = {}
    for shard in sorted(set(weight_map.values())):
        out.update(safetensors_np.load(os.path.join(model_dir, shard)))
    return out


def load_model(model_dir, dtype=torch.float32):
    cfg = load_config(os.path.join(model_dir, "config.json"))
    model = CausalLM(cfg)
    try:
        tensors = read_weights(model_dir)
    except (OSError, safetensors_np.SafetensorsError) as e:
        raise RefError("load weights from %s: %s" % (model_dir, e)) from e
    params = dict(model.named_parameters())
    missing = [n for n in params if n not in tensors]
    if missing:
        raise RefError("%s: missing tensors: %s" % (model_dir, ", ".join(missing[:8])))
    with torch.no_grad():
        for name, p in params.items():
            arr = tensors[name]
            if tuple(arr.shape) != tuple(p.shape):
                raise RefError("%s: tensor %s has shape %s, config wants %s"
                               % (model_dir, name, list(arr.shape), list(p.shape)))
            p.copy_(torch.from_numpy(np.array(arr, dtype=np.float32)))
    unused = sorted(n for n in tensors if n not in params)
    # Tied checkpoints sometimes still carry lm_head.weight, and old Llama
    # ones carry rotary inv_freq buffers; neither changes the math.
    unused = [n for n in unused if not n.endswith("rotary_emb.inv_freq")
              and not (cfg.tie and n == "lm_head.weight")]
    if unused:
        print("torch_ref: warning: unused tensors: %s" % ", ".join(unused[:8]), file=sys.stderr)
    return model.to(dtype)


def init_weights(model, seed):
    """Random weights: N(0, 0.02) matrices, norms 1 + 0.1*N(0,1) so their
    gradients matter, small random biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith(".bias"):
                p.copy_(0.02 * noise)
            else:
                p.copy_(0.02 * noise)


def save_model(model, raw_config, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(raw_config, f, indent=2, sort_keys=True)
        f.write("\n")
    tensors = {n: p.detach().float().numpy() for n, p in model.named_parameters()}
    safetensors_np.save(os.path.join(out_dir, "model.safetensors"), tensors,
                        metadata={"format": "pt"})


# --------------------------------------------------------------------------
# LoRA adapters, as Hugging Face PEFT defines them: a targeted nn.Linear
# computes base(x) + scaling * lora_B(lora_A(x)), scaling = lora_alpha / r
# (lora_alpha / sqrt(r) with use_rslora), the base weights frozen.


class LoRALinear(nn.Module):
    def __init__(self, base, r, scaling):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = scaling

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def lora_targets(model, acfg):
    """Names of the nn.Linear modules an adapter_config selects: a list
    entry matches a module named it or ending in "." + it, a string is a
    regex over the whole name, "all-linear" is every linear layer but the
    output layer; layers_to_transform keeps the listed layer indices."""
    import re
    tm = acfg.get("target_modules")
    layers = acfg.get("layers_to_transform")
    if isinstance(layers, int):
        layers = [layers]
    out = []
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or name == "lm_head":
            continue
        if tm == "all-linear":
            hit = True
        elif isinstance(tm, str):
            hit = re.fullmatch(tm, name) is not None
        else:
            hit = any(name == t or name.endswith("." + t) for t in tm)
        if hit and layers is not None:
            m = re.match(r".*\.layers\.(\d+)\.", name)
            hit = m is not None and int(m.group(1)) in layers
        if hit:
            out.append(name)
    return out


def apply_adapter(model, adapter_dir):
    """Wraps the targeted projections of model with the adapter's A and B
    (read from adapter_model.safetensors), freezes every other parameter,
    and returns {PEFT tensor name: parameter} of the adapter."""
    acfg = read_json(os.path.join(adapter_dir, "adapter_config.json"))
    for key, default in (("use_dora", False), ("bias", "none"), ("modules_to_save", None)):
        if acfg.get(key, default) not in (default, None, []):
            raise RefError("adapter: %s=%r is not implemented by this reference" % (key, acfg[key]))
    r = int(acfg["r"])
    alpha = float(acfg.get("lora_alpha", 8))
    scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    tensors = safetensors_np.load(os.path.join(adapter_dir, "adapter_model.safetensors"))
    dtype = model.model.embed_tokens.weight.dtype
    for p in model.parameters():
        p.requires_grad_(False)
    params = {}
    modules = dict(model.named_modules())
    for name in lora_targets(model, acfg):
        parent_name, _, leaf = name.rpartition(".")
        base = modules[name]
        wrapped = LoRALinear(base, r, scaling).to(dtype)
        for ab, lin in (("lora_A", wrapped.lora_A), ("lora_B", wrapped.lora_B)):
            key = "base_model.model.%s.%s.weight" % (name, ab)
            if key not in tensors:
                raise RefError("adapter: missing tensor %s" % key)
            arr = tensors[key]
            if tuple(arr.shape) != tuple(lin.weight.shape):
                raise RefError("adapter: %s has shape %s, want %s" % (key, list(arr.shape), list(lin.weight.shape)))
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.array(arr, dtype=np.float32)).to(dtype))
            lin.weight.requires_grad_(True)
            params[key] = lin.weight
        setattr(modules[parent_name], leaf, wrapped)
    unused = sorted(set(tensors) - set(params))
    if unused:
        raise RefError("adapter: unused tensors: %s" % ", ".join(unused[:8]))
    if not params:
        raise RefError("adapter: target_modules selects nothing")
    return params


# --------------------------------------------------------------------------
# Forward, loss, log-probs


def parse_batch(obj, vocab):
    """{"ids": B×T, "lens": [B]} -> (ids LongTensor with padding replaced by
    0, lens LongTensor). Padding ids may be anything, even out of range."""
    if not isinstance(obj, dict) or "ids" not in obj:
        raise RefError('input: want {"ids": [[...]], "lens": [...]}')
    rows = obj["ids"]
    if not rows or not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise RefError("input: ids must be a non-empty list of lists")
    t = len(rows[0])
    if t == 0 or any(len(r) != t for r in rows):
        raise RefError("input: ids rows must all have the same non-zero length (right-pad them)")
    lens = obj.get("lens")
    if lens is None:
        lens = [t] * len(rows)
    if len(lens) != len(rows):
        raise RefError("input: %d lens for %d rows" % (len(lens), len(rows)))
    clean = []
    for b, (row, n) in enumerate(zip(rows, lens)):
        if not isinstance(n, int) or not 0 <= n <= t:
            raise RefError("input: lens[%d] = %r is not in [0, %d]" % (b, n, t))
        for j in range(n):
            if not isinstance(row[j], int) or not 0 <= row[j] < vocab:
                raise RefError("input: ids[%d][%d] = %r is not a token id < %d" % (b, j, row[j], vocab))
        clean.append(list(row[:n]) + [0] * (t - n))
    return torch.tensor(clean, dtype=torch.long), torch.tensor(lens, dtype=torch.long)


def forward_outputs(model, ids, lens, hidden=None):
    """Returns (logits [B,T,V] zeroed at padding, loss scalar, logprobs [B,T]).

    loss is the mean over every valid next-token target of -log p; with no
    target at all it is 0. logprobs[b,t] = log p(ids[b,t] | ids[b,:t]) for
    1 <= t < lens[b], 0 elsewhere.
    """
    b, t = ids.shape
    valid = torch.arange(t)[None, :] < lens[:, None]  # [B,T]
    logits, _ = model(ids, key_valid=valid, hidden=hidden)
    logits = torch.where(valid[..., None], logits, torch.zeros((), dtype=logits.dtype))
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    tok = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # [B,T-1]
    target_valid = valid[:, 1:]
    tok = torch.where(target_valid, tok, torch.zeros((), dtype=tok.dtype))
    count = int(target_valid.sum())
    loss = -tok.sum() / count if count else tok.sum() * 0
    logprobs = torch.cat((torch.zeros(b, 1, dtype=tok.dtype), tok), dim=1)
    return logits, loss, logprobs


def param_grads(model):
    return {n: (p.grad if p.grad is not None else torch.zeros_like(p))
            for n, p in model.named_parameters()}


# --------------------------------------------------------------------------
# Greedy generation


def generate(model, prompts, max_new, use_cache=True, eos=None):
    """Greedy continuation of each prompt; returns (new ids, their logprobs).

    Ties go to the lowest token id (torch.argmax). Stops early on eos ids."""
    eos = set(eos or [])
    all_ids, all_lp = [], []
    with torch.no_grad():
        for prompt in prompts:
            seq = list(prompt)
            new, lps = [], []
            past = None
            feed = seq
            for _ in range(max_new):
                if use_cache:
                    logits, past = model(torch.tensor([feed]), past=past)
                else:
                    logits, _ = model(torch.tensor([seq]))
                last = torch.log_softmax(logits[0, -1].double(), dim=-1)
                nxt = int(torch.argmax(last))
                new.append(nxt)
                lps.append(float(last[nxt]))
                seq.append(nxt)
                feed = [nxt]
                if nxt in eos:
                    break
            all_ids.append(new)
            all_lp.append(lps)
    return all_ids, all_lp


# --------------------------------------------------------------------------
# Commands


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RefError("read %s: %s" % (path, e)) from e


def cmd_forward(args):
    dtype = torch.float64 if args.double else torch.float32
    model = load_model(args.model, dtype)
    adapter = apply_adapter(model, args.adapter) if getattr(args, "adapter", None) else None
    ids, lens = parse_batch(read_json(args.input), model.cfg.vocab)
    torch.set_grad_enabled(args.grads)
    hidden = [] if args.hidden_states else None
    logits, loss, logprobs = forward_outputs(model, ids, lens, hidden)
    out = {
        "logits": logits.detach().float().numpy(),
        "loss": loss.detach().float().reshape(1).numpy(),
        "logprobs": logprobs.detach().float().numpy(),
    }
    if hidden is not None:
        valid = (torch.arange(ids.shape[1])[None, :] < lens[:, None])[..., None]
        for i, h in enumerate(hidden):
            name = "hidden.norm" if i == len(hidden) - 1 else "hidden.%d" % i
            out[name] = torch.where(valid, h.detach(), torch.zeros((), dtype=h.dtype)).float().numpy()
    if args.grads:
        loss.backward()
        if adapter is not None:
            # Only the adapter trains: the gradients of its A and B.
            for name, p in adapter.items():
                out["grad." + name] = p.grad.float().numpy()
        else:
            for name, g in param_grads(model).items():
                out["grad." + name] = g.float().numpy()
    safetensors_np.save(args.out, out)


def cmd_init(args):
    raw = read_json(args.config)
    cfg = Config(raw)
    model = CausalLM(cfg)
    init_weights(model, args.seed)
    save_model(model, raw, args.out)


def parse_prompts(obj):
    prompts = obj.get("ids") if isinstance(obj, dict) else obj
    if not isinstance(prompts, list) or not all(isinstance(p, list) and p for p in prompts):
        raise RefError('input: want {"ids": [[prompt ids], ...]} with non-empty prompts')
    return prompts


def cmd_generate(args):
    dtype = torch.float64 if args.double else torch.float32
    model = load_model(args.model, dtype)
    prompts = parse_prompts(read_json(args.input))
    for i, p in enumerate(prompts):
        bad = [x for x in p if not isinstance(x, int) or not 0 <= x < model.cfg.vocab]
        if bad:
            raise RefError("input: prompt %d has invalid ids %r" % (i, bad[:4]))
    if args.max_new_tokens < 0:
        raise RefError("--max-new-tokens must be >= 0")
    ids, lps = generate(model, prompts, args.max_new_tokens, use_cache=not args.no_cache, eos=args.eos)
    with open(args.out, "w") as f:
        json.dump({"ids": ids, "logprobs": lps}, f)
        f.write("\n")


# --------------------------------------------------------------------------
# Self-tests


def central_diff_error(flat, gflat, j, h, loss):
    """Relative error of the gradient entry gflat[j] against the central
    difference of loss() when flat[j] moves by +-h (flat[j] is restored)."""
    old = float(flat[j])
    flat[j] = old + h
    up = float(loss())
    flat[j] = old - h
    down = float(loss())
    flat[j] = old
    fd = (up - down) / (2 * h)
    return abs(fd - float(gflat[j])) / max(abs(fd), 1e-4)


def _rel(a, b):
    """max |a-b| / max(|b|, tiny): one relative error for a whole tensor."""
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / max(float(b.abs().max()), 1e-30))


TEST_CONFIGS = {
    "llama_gqa_untied": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 97, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": False, "attention_bias": False},
    "qwen2_bias_tied": {
        "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 97, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": True},
    "qwen3_qknorm_headdim": {
        "architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 24, "vocab_size": 97, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "tie_word_embeddings": True, "attention_bias": False},
    "llama3_rope_scaling": {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1,
        "vocab_size": 97, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        "tie_word_embeddings": True, "attention_bias": True},
    "mistral_window_linear": {
        "architectures": ["MistralForCausalLM"], "hidden_size": 64, "intermediate_size": 96,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "vocab_size": 97, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "rope_scaling": {"type": "linear", "factor": 2.0}, "sliding_window": 4,
        "tie_word_embeddings": False},
}


def naive_logits(model, seq):
    """Logits for one unpadded sequence, written independently of the
    batched code: loops over heads and positions, rotates pairs
    (i, i + hd/2) explicitly. float64 throughout."""
    cfg = model.cfg
    p = {n: t.detach().double() for n, t in model.named_parameters()}
    hd, half = cfg.head_dim, cfg.head_dim // 2
    inv = 1.0 / torch.tensor([cfg.rope_theta ** (2.0 * i / hd) for i in range(half)], dtype=torch.float64)
    inv = rope_inv_freq(cfg, torch.float64) if cfg.rope_type != "default" else inv

    def norm(x, w):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + cfg.eps) * w

    def lin(x, name):
        y = x @ p[name + ".weight"].T
        return y + p[name + ".bias"] if name + ".bias" in p else y

    def rot(v, pos):
        out = v.clone()
        for i in range(half):
            c, s = math.cos(pos * float(inv[i])), math.sin(pos * float(inv[i]))
            out[i] = v[i] * c - v[i + half] * s
            out[i + half] = v[i + half] * c + v[i] * s
        return out

    n = len(seq)
    x = p["model.embed_tokens.weight"][torch.tensor(seq)]
    for li in range(cfg.layers):
        pre = "model.layers.%d." % li
        h = norm(x, p[pre + "input_layernorm.weight"])
        q = lin(h, pre + "self_attn.q_proj").view(n, cfg.heads, hd)
        k = lin(h, pre + "self_attn.k_proj").view(n, cfg.kv_heads, hd)
        v = lin(h, pre + "self_attn.v_proj").view(n, cfg.kv_heads, hd)
        if cfg.qk_norm:
            q = norm(q, p[pre + "self_attn.q_norm.weight"])
            k = norm(k, p[pre + "self_attn.k_norm.weight"])
        q = torch.stack([torch.stack([rot(q[t, hh], t) for hh in range(cfg.heads)]) for t in range(n)])
        k = torch.stack([torch.stack([rot(k[t, hh], t) for hh in range(cfg.kv_heads)]) for t in range(n)])
        att = torch.zeros(n, cfg.heads, hd, dtype=torch.float64)
        window = cfg.sliding[li]
        for hh in range(cfg.heads):
            kv = hh // (cfg.heads // cfg.kv_heads)
            for t in range(n):
                keys = [s for s in range(t + 1) if window is None or t - s < window]
                sc = torch.stack([q[t, hh] @ k[s, kv] for s in keys]) / math.sqrt(hd)
                w = torch.exp(sc - sc.max())
                w = w / w.sum()
                att[t, hh] = sum(w[j] * v[s, kv] for j, s in enumerate(keys))
        x = x + lin(att.reshape(n, -1), pre + "self_attn.o_proj")
        h = norm(x, p[pre + "post_attention_layernorm.weight"])
        g = lin(h, pre + "mlp.gate_proj")
        x = x + lin(g * torch.sigmoid(g) * lin(h, pre + "mlp.up_proj"), pre + "mlp.down_proj")
    x = norm(x, p["model.norm.weight"])
    head = p["model.embed_tokens.weight"] if cfg.tie else p["lm_head.weight"]
    return x @ head.T


class Checker:
    def __init__(self):
        self.failures = 0

    def check(self, ok, what):
        print("  %s  %s" % ("ok  " if ok else "FAIL", what))
        if not ok:
            self.failures += 1


def selftest_safetensors(c, tmp):
    print("safetensors_np")
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    i = np.arange(6, dtype=np.int64).reshape(2, 3)
    path = os.path.join(tmp, "rt.safetensors")
    safetensors_np.save(path, {"a": a, "b.idx": i, "scalar": np.float32(2.5).reshape(())})
    back = safetensors_np.load(path)
    c.check(np.array_equal(back["a"], a) and np.array_equal(back["b.idx"], i)
            and back["scalar"].shape == () and float(back["scalar"]) == 2.5, "F32/I64/scalar round trip")
    with open(path, "rb") as f:
        (n,) = np.frombuffer(f.read(8), dtype="<u8")
    c.check((8 + int(n)) % 8 == 0, "data section 8-byte aligned")
    exact = np.array([1.5, -2.25, 0.0, 65504.0, 3.0e-5], dtype=np.float32)
    raw = os.path.join(tmp, "half.safetensors")
    safetensors_np.save_raw(raw, [
        ("h", "F16", [5], exact.astype("<f2").tobytes()),
        ("bf", "BF16", [5], safetensors_np.to_bf16_bytes(exact)),
        ("bfr", "BF16", [3, 5], safetensors_np.to_bf16_bytes(a)),
    ])
    got = safetensors_np.load(raw)
    c.check(got["h"].dtype == np.float32 and np.allclose(got["h"], exact, rtol=1e-3, atol=1e-7),
            "F16 read (rel 1e-3)")
    c.check(np.array_equal(got["bf"][:3], exact[:3]), "BF16 read exact for representable values")
    c.check(np.abs(got["bfr"] - a).max() <= np.abs(a).max() * 2 ** -8, "BF16 read within 2^-8")
    bad = os.path.join(tmp, "bad.safetensors")
    with open(path, "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[:-4])
    try:
        safetensors_np.load(bad)
        c.check(False, "truncated file rejected")
    except safetensors_np.SafetensorsError:
        c.check(True, "truncated file rejected")


def selftest_rope(c):
    print("llama3 rope scaling")
    cfg = Config(dict(TEST_CONFIGS["llama3_rope_scaling"], head_dim=64,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}))
    base = Config(dict(TEST_CONFIGS["llama_gqa_untied"], head_dim=64, rope_theta=500000.0))
    inv, ref = rope_inv_freq(cfg, torch.float64), rope_inv_freq(base, torch.float64)
    wl = 2 * math.pi / ref
    hi, lo = wl < 8192 / 4, wl > 8192 / 1
    mid = ~hi & ~lo
    ratio = ref / inv
    c.check(bool(hi.any() and lo.any() and mid.any()), "test covers all three bands")
    c.check(torch.equal(inv[hi], ref[hi]), "high frequencies unchanged")
    c.check(bool(torch.allclose(ratio[lo], torch.full_like(ratio[lo], 8.0))), "low frequencies divided by 8")
    c.check(bool(((ratio[mid] > 1) & (ratio[mid] < 8)).all()), "medium band interpolated")


def selftest_config(c):
    print("config")
    q = dict(TEST_CONFIGS["qwen2_bias_tied"], sliding_window=4, max_window_layers=1)
    c.check(Config(q).sliding == [None, None], "qwen2: window ignored unless use_sliding_window")
    c.check(Config(dict(q, use_sliding_window=True)).sliding == [None, 4],
            "qwen2: window from max_window_layers on")
    c.check(Config(dict(q, layer_types=["sliding_attention", "full_attention"],
                        use_sliding_window=True)).sliding == [4, None], "layer_types respected")
    cq = Config(TEST_CONFIGS["qwen2_bias_tied"])
    cl = Config(dict(TEST_CONFIGS["llama_gqa_untied"], attention_bias=True))
    c.check((cq.qkv_bias, cq.o_bias, cl.qkv_bias, cl.o_bias) == (True, False, True, True),
            "bias layout: qwen2 q/k/v only, llama attention_bias q/k/v/o")
    for bad, what in ((dict(TEST_CONFIGS["llama_gqa_untied"], num_key_value_heads=3), "heads % kv_heads"),
                      (dict(TEST_CONFIGS["llama_gqa_untied"], rope_scaling={"type": "yarn"}), "unknown rope"),
                      ({"architectures": ["GPT2LMHeadModel"]}, "unknown architecture")):
        try:
            Config(bad)
            c.check(False, "rejects " + what)
        except RefError:
            c.check(True, "rejects " + what)


def selftest_model(c, name, raw, tmp):
    print(name)
    torch.manual_seed(0)
    d = os.path.join(tmp, name)
    cfg_path = os.path.join(tmp, name + ".json")
    with open(cfg_path, "w") as f:
        json.dump(raw, f)
    cmd_init(argparse.Namespace(config=cfg_path, seed=7, out=d))
    m32 = load_model(d, torch.float32)
    m64 = load_model(d, torch.float64)
    cfg = m32.cfg
    g = torch.Generator().manual_seed(3)
    lens = torch.tensor([9, 5, 7])
    t = 9
    ids = torch.randint(0, cfg.vocab, (3, t), generator=g)
    ids_other_pad = ids.clone()
    for b in range(3):
        ids_other_pad[b, lens[b]:] = torch.randint(0, cfg.vocab, (t - int(lens[b]),), generator=g)

    # Against an independent per-position implementation.
    with torch.no_grad():
        lg64, _, _ = forward_outputs(m64, ids, lens)
        naive = naive_logits(m64, ids[0].tolist())
    c.check(_rel(lg64[0], naive) < 1e-10, "batched forward matches naive loops (float64, rel 1e-10)")

    # Padding must not change valid rows.
    with torch.no_grad():
        lg, loss, lp = forward_outputs(m32, ids, lens)
        lg2, loss2, lp2 = forward_outputs(m32, ids_other_pad, lens)
        worst = 0.0
        for b in range(3):
            n = int(lens[b])
            alone, _, _ = forward_outputs(m32, ids[b:b + 1, :n], lens[b:b + 1])
            worst = max(worst, _rel(lg[b, :n], alone[0]))
            worst = max(worst, float(lg[b, n:].abs().max()) if n < t else 0.0)
    c.check(worst < 1e-5, "padded rows equal the row alone, padding logits zero (rel %.1e < 1e-5)" % worst)
    c.check(torch.equal(lg, lg2) and torch.equal(lp, lp2), "padding ids do not matter")
    count = int((lens - 1).sum())
    c.check(abs(float(loss) + float(lp.sum()) / count) < 1e-6, "loss = -mean(valid logprobs)")
    c.check(float(lp[:, 0].abs().max()) == 0.0 and float(lp[1, 5:].abs().max()) == 0.0,
            "logprobs zero at t=0 and padding")

    # float32 against float64, including gradients.
    l32 = forward_outputs(m32, ids, lens)[1]
    l32.backward()
    l64 = forward_outputs(m64, ids, lens)[1]
    l64.backward()
    g32, g64 = param_grads(m32), param_grads(m64)
    worst = max(_rel(g32[n], g64[n]) for n in g64)
    c.check(abs(float(l32) - float(l64)) < 1e-5 * float(l64), "float32 loss matches float64 (rel 1e-5)")
    c.check(worst < 1e-3, "float32 grads match float64 (worst tensor rel %.1e < 1e-3)" % worst)
    c.check(all(float(g64[n].abs().max()) > 0 for n in g64), "every parameter gets a gradient")

    # Finite differences in float64 on a few entries of several tensors.
    names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
             "model.layers.1.self_attn.k_proj.weight", "model.layers.0.input_layernorm.weight",
             "model.layers.1.mlp.down_proj.weight", "model.norm.weight"]
    names += [n for n in g64 if n.endswith(".bias") or "q_norm" in n or n == "lm_head.weight"][:3]
    params = dict(m64.named_parameters())
    worst = 0.0
    with torch.no_grad():
        for n in names:
            p = params[n].view(-1)
            gflat = g64[n].reshape(-1)
            # The entry with the largest gradient, plus a fixed other one.
            for j in (int(gflat.abs().argmax()), (p.numel() * 2) // 3):
                h = 1e-5 * max(1.0, abs(float(p[j])))
                worst = max(worst, central_diff_error(p, gflat, j, h, lambda: forward_outputs(m64, ids, lens)[1]))
    c.check(worst < 1e-6, "grads match central differences (float64, worst rel %.1e < 1e-6)" % worst)

    # SGD on one batch must lower the loss.
    opt = torch.optim.SGD(m32.parameters(), lr=0.02)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        l = forward_outputs(m32, ids, lens)[1]
        l.backward()
        opt.step()
        losses.append(float(l))
    c.check(all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.05,
            "SGD lowers the loss (%.4f -> %.4f)" % (losses[0], losses[-1]))

    # KV-cached greedy generation equals recomputation.
    prompts = [ids[0, :3].tolist(), ids[2, :6].tolist()]
    a_ids, a_lp = generate(m64, prompts, 6, use_cache=True)
    b_ids, b_lp = generate(m64, prompts, 6, use_cache=False)
    same_lp = all(abs(x - y) < 1e-9 for r, s in zip(a_lp, b_lp) for x, y in zip(r, s))
    c.check(a_ids == b_ids and same_lp, "KV-cached greedy equals recompute (float64)")


def cmd_selftest(args):
    start = time.time()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    c = Checker()
    with tempfile.TemporaryDirectory() as tmp:
        selftest_safetensors(c, tmp)
        selftest_rope(c)
        selftest_config(c)
        for name, raw in TEST_CONFIGS.items():
            if args.only and args.only not in name:
                continue
            selftest_model(c, name, raw, tmp)
        selftest_cli(c, tmp)
        selftest_lora(c, tmp)
    print("%s: %d failure(s) in %.1f s" % ("FAIL" if c.failures else "PASS", c.failures, time.time() - start))
    return 1 if c.failures else 0


def selftest_lora(c, tmp):
    """The adapter wrapper: B = 0 is the base model, gradients match finite
    differences, and merging W + s*B*A gives the same logits."""
    print("lora")
    model_dir = os.path.join(tmp, "qwen2_bias_tied")
    adir = os.path.join(tmp, "adapter")
    os.makedirs(adir, exist_ok=True)
    acfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 3, "lora_alpha": 5.0,
            "target_modules": ["q_proj", "v_proj", "o_proj", "down_proj"], "layers_to_transform": [1]}
    with open(os.path.join(adir, "adapter_config.json"), "w") as f:
        json.dump(acfg, f)
    base = load_model(model_dir, torch.float64)
    names = lora_targets(base, acfg)
    c.check(names == ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj",
                      "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.down_proj"],
            "target_modules and layers_to_transform select the named projections of layer 1")
    mods = dict(base.named_modules())
    g = torch.Generator().manual_seed(5)

    def write(zero_b):
        t = {}
        for n in names:
            lin = mods[n]
            a = 0.3 * torch.randn(3, lin.in_features, generator=g, dtype=torch.float64)
            b = 0.3 * torch.randn(lin.out_features, 3, generator=g, dtype=torch.float64)
            t["base_model.model.%s.lora_A.weight" % n] = a.float().numpy()
            t["base_model.model.%s.lora_B.weight" % n] = (0 * b if zero_b else b).float().numpy()
        safetensors_np.save(os.path.join(adir, "adapter_model.safetensors"), t)
        return t

    ids = torch.tensor([[1, 5, 9, 2, 7, 3], [4, 8, 6, 0, 0, 0]])
    lens = torch.tensor([6, 3])
    write(True)
    m = load_model(model_dir, torch.float64)
    apply_adapter(m, adir)
    with torch.no_grad():
        same = torch.equal(forward_outputs(m, ids, lens)[0], forward_outputs(base, ids, lens)[0])
    c.check(same, "B = 0: the adapted model is the base model")

    t = write(False)
    m = load_model(model_dir, torch.float64)
    params = apply_adapter(m, adir)
    loss = forward_outputs(m, ids, lens)[1]
    loss.backward()
    c.check(all(p.grad is None for n, p in m.named_parameters() if "lora_" not in n),
            "only the adapter's parameters get gradients")
    worst = 0.0
    with torch.no_grad():
        for key, p in params.items():
            flat, gflat = p.view(-1), p.grad.reshape(-1)
            for j in (int(gflat.abs().argmax()), flat.numel() // 2):
                worst = max(worst, central_diff_error(flat, gflat, j, 1e-5, lambda: forward_outputs(m, ids, lens)[1]))
    c.check(worst < 1e-6, "A and B gradients match central differences (float64, worst rel %.1e < 1e-6)" % worst)

    merged = load_model(model_dir, torch.float64)
    mm = dict(merged.named_modules())
    with torch.no_grad():
        for n in names:
            a = torch.from_numpy(np.array(t["base_model.model.%s.lora_A.weight" % n])).double()
            b = torch.from_numpy(np.array(t["base_model.model.%s.lora_B.weight" % n])).double()
            mm[n].weight += (5.0 / 3) * (b @ a)
        diff = _rel(forward_outputs(merged, ids, lens)[0], forward_outputs(m, ids, lens)[0])
    c.check(diff < 1e-12, "W + s*B*A merged gives the adapted logits (float64, rel %.1e)" % diff)


def selftest_cli(c, tmp):
    """The file-level commands, as the Go tests call them."""
    print("cli")
    model_dir = os.path.join(tmp, "llama_gqa_untied")
    inp = os.path.join(tmp, "in.json")
    with open(inp, "w") as f:
        json.dump({"ids": [[1, 2, 3, 4], [5, 6, -1, -1]], "lens": [4, 2]}, f)
    out = os.path.join(tmp, "out.safetensors")
    cmd_forward(argparse.Namespace(model=model_dir, input=inp, out=out, grads=True, double=False,
                                   hidden_states=True))
    got = safetensors_np.load(out)
    model = load_model(model_dir)
    grads = {"grad." + n for n, _ in model.named_parameters()}
    c.check(got["logits"].shape == (2, 4, 97) and got["logprobs"].shape == (2, 4)
            and got["loss"].shape == (1,) and grads <= set(got), "forward writes logits/loss/logprobs/grads")
    head = model.lm_head.weight.detach().numpy()
    c.check(got["hidden.0"].shape == (2, 4, 64) and "hidden.2" in got and "hidden.3" not in got
            and np.allclose(got["hidden.norm"] @ head.T, got["logits"], atol=1e-5)
            and float(np.abs(got["hidden.1"][1, 2:]).max()) == 0.0,
            "hidden states: embed, per layer, final norm (norm @ head = logits), zero at padding")
    c.check("grad.lm_head.weight" in got, "untied model has grad.lm_head.weight")
    tied_out = os.path.join(tmp, "tied.safetensors")
    cmd_forward(argparse.Namespace(model=os.path.join(tmp, "qwen2_bias_tied"), input=inp, out=tied_out,
                                   grads=True, double=True, hidden_states=False))
    tied = safetensors_np.load(tied_out)
    c.check("grad.lm_head.weight" not in tied and "grad.model.embed_tokens.weight" in tied
            and tied["logits"].dtype == np.float32, "tied model: only the embedding gradient, F32 out")
    # A sharded checkpoint gives the same logits; a missing tensor is named.
    sharded = os.path.join(tmp, "sharded")
    os.makedirs(sharded)
    tensors = safetensors_np.load(os.path.join(model_dir, "model.safetensors"))
    names = sorted(tensors)
    halves = {"a.safetensors": names[::2], "b.safetensors": names[1::2]}
    for shard, part in halves.items():
        safetensors_np.save(os.path.join(sharded, shard), {n: tensors[n] for n in part})
    with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
        json.dump({"weight_map": {n: s for s, part in halves.items() for n in part}}, f)
    with open(os.path.join(model_dir, "config.json")) as src, \
            open(os.path.join(sharded, "config.json"), "w") as dst:
        dst.write(src.read())
    probe = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        same = torch.equal(load_model(sharded)(probe)[0], model(probe)[0])
    c.check(same, "sharded checkpoint loads the same weights")
    os.remove(os.path.join(sharded, "a.safetensors"))
    safetensors_np.save(os.path.join(sharded, "a.safetensors"), {n: tensors[n] for n in halves["a.safetensors"][1:]})
    try:
        load_model(sharded)
        c.check(False, "missing tensor reported")
    except RefError as e:
        c.check(halves["a.safetensors"][0] in str(e), "missing tensor reported by name")
    gen_in = os.path.join(tmp, "gen.json")
    gen_out = os.path.join(tmp, "gen_out.json")
    with open(gen_in, "w") as f:
        json.dump({"ids": [[1, 2, 3], [4]]}, f)
    cmd_generate(argparse.Namespace(model=model_dir, input=gen_in, out=gen_out, max_new_tokens=3,
                                    no_cache=False, double=False, eos=None))
    res = read_json(gen_out)
    c.check([len(r) for r in res["ids"]] == [3, 3], "generate writes 3 new tokens per prompt")
    try:
        with open(inp, "w") as f:
            json.dump({"ids": [[1, 200]], "lens": [2]}, f)
        cmd_forward(argparse.Namespace(model=model_dir, input=inp, out=out, grads=False, double=False,
                                       hidden_states=False))
        c.check(False, "out-of-vocab id rejected")
    except RefError:
        c.check(True, "out-of-vocab id rejected")


# --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("forward", help="logits, loss, logprobs and gradients for a batch")
    p.add_argument("--model", required=True, help="directory with config.json and model.safetensors")
    p.add_argument("--input", required=True, help='JSON {"ids": B x T, "lens": [B]}, right-padded')
    p.add_argument("--out", required=True, help="output .safetensors (F32)")
    p.add_argument("--grads", action="store_true", help="also write grad.<tensor name> for every weight")
    p.add_argument("--double", action="store_true", help="compute in float64 (outputs still F32)")
    p.add_argument("--adapter", default=None,
                   help="PEFT LoRA adapter directory (adapter_config.json, adapter_model.safetensors); "
                        "--grads then writes grad.<adapter tensor name> for its A and B only")
    p.add_argument("--hidden-states", action="store_true",
                   help="also write hidden.0 (embeddings), hidden.<i> (after layer i-1) and "
                        "hidden.norm (final norm), zero at padding, to find where a port diverges")
    p.set_defaults(func=cmd_forward)

    p = sub.add_parser("init", help="random weights for a config")
    p.add_argument("--config", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="directory to create")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("generate", help="greedy continuation of prompts")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True, help='JSON {"ids": [[prompt ids], ...]}')
    p.add_argument("--max-new-tokens", type=int, required=True)
    p.add_argument("--out", required=True, help='output JSON {"ids": [[new ids]], "logprobs": [[...]]}')
    p.add_argument("--no-cache", action="store_true", help="recompute the whole prefix every step")
    p.add_argument("--double", action="store_true", help="compute in float64")
    p.add_argument("--eos", type=int, action="append", help="stop a row after this id (repeatable)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("selftest", help="internal consistency checks")
    p.add_argument("--only", default="", help="run only model configs whose name contains this")
    p.set_defaults(func=cmd_selftest)

    args = ap.parse_args(argv)
    try:
        return args.func(args) or 0
    except RefError as e:
        print("torch_ref: error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
