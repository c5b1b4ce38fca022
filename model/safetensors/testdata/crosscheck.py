"""Cross-checks the Go safetensors package against PyTorch.

Usage: crosscheck.py DIR

1. Reads DIR/go_f32.safetensors and DIR/go_bf16.safetensors (written by the
   Go test from the same tensors) with plain json/struct/numpy, checks them
   against the layout rules of the reference safetensors writer, and checks
   that every BF16 value equals PyTorch's own float32 -> bfloat16 rounding.
2. Writes DIR/torch.safetensors holding F16, BF16 and F64 tensors converted
   by PyTorch, each next to an F32 tensor "<name>.want" with PyTorch's
   conversion back to float32, for the Go test to compare against.

Exits non-zero with a message on the first mismatch.
"""
import json
import struct
import sys

import numpy as np
import torch

SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}
# The reference writer orders tensors by descending dtype rank, then name.
RANK = {"F64": 12, "F32": 11, "BF16": 8, "F16": 7}


def fail(msg):
    print("crosscheck: " + msg)
    sys.exit(1)


def unique_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        fail(f"duplicate keys in {keys}")
    return dict(pairs)


def parse(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    text = blob[8 : 8 + n].decode("utf-8")
    if n % 8 != 0:
        fail(f"{path}: header length {n} is not a multiple of 8")
    if not text.startswith("{") or not text.rstrip(" ").endswith("}"):
        fail(f"{path}: header must be a JSON object padded with spaces only")
    header = json.loads(text, object_pairs_hook=unique_keys)
    keys = list(header)  # dicts keep the file's key order
    meta = header.pop("__metadata__", None)
    if keys and "__metadata__" in keys and keys[0] != "__metadata__":
        fail(f"{path}: __metadata__ is not the first key")
    if meta is None or meta.get("format") != "pt":
        fail(f"{path}: metadata {meta} lacks format=pt, which transformers requires")
    names = [k for k in keys if k != "__metadata__"]
    want_order = sorted(names, key=lambda k: (-RANK[header[k]["dtype"]], k))
    if names != want_order:
        fail(f"{path}: tensors in order {names}, reference writer order is {want_order}")
    data = blob[8 + n :]
    at = 0
    tensors = {}
    for name in names:
        info = header[name]
        begin, end = info["data_offsets"]
        if begin != at:
            fail(f"{path}: tensor {name} starts at {begin}, previous ended at {at}")
        count = int(np.prod(info["shape"], dtype=np.int64))
        if end - begin != count * SIZES[info["dtype"]]:
            fail(f"{path}: tensor {name} spans {end - begin} bytes for shape {info['shape']}")
        at = end
        raw = data[begin:end]
        if info["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif info["dtype"] == "BF16":
            arr = np.frombuffer(raw, dtype="<u2")
        else:
            fail(f"{path}: unexpected dtype {info['dtype']}")
        tensors[name] = (info["dtype"], info["shape"], arr.reshape(info["shape"]))
    if at != len(data):
        fail(f"{path}: {len(data) - at} bytes after the last tensor")
    return tensors, meta


def check_go_files(d):
    f32, meta32 = parse(d + "/go_f32.safetensors")
    bf16, meta16 = parse(d + "/go_bf16.safetensors")
    if meta32 != meta16 or meta32.get("origin") != "go":
        fail(f"metadata differs or lacks origin=go: {meta32} {meta16}")
    if sorted(f32) != sorted(bf16):
        fail("the two files hold different tensor names")
    checked = 0
    for name, (dt, shape, src) in f32.items():
        dt16, shape16, got = bf16[name]
        if dt != "F32" or dt16 != "BF16" or shape != shape16:
            fail(f"{name}: dtypes {dt}/{dt16}, shapes {shape}/{shape16}")
        src_t = torch.from_numpy(np.ascontiguousarray(src).astype(np.float32))
        want = src_t.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
        nan = np.isnan(src)
        got_nan = np.isnan(torch.from_numpy(got.view(np.int16).copy()).view(torch.bfloat16).float().numpy())
        if not np.array_equal(nan, got_nan):
            fail(f"{name}: NaN positions differ")
        bad = (want != got) & ~nan
        if bad.any():
            i = np.argwhere(bad)[0]
            fail(f"{name}{list(i)}: f32 bits {src[tuple(i)].view(np.uint32):#010x} -> go bf16 "
                 f"{got[tuple(i)]:#06x}, torch {want[tuple(i)]:#06x}")
        checked += src.size
    return checked


def write_reference(path):
    g = torch.Generator().manual_seed(7)
    base = torch.randn(4096, generator=g) * torch.exp2(torch.randint(-30, 30, (4096,), generator=g).float())
    specials = torch.tensor([0.0, -0.0, 1.0, -1.0, float("inf"), float("-inf"), float("nan"),
                             65504.0, 65520.0, 1e5, 6e-8, 3e-8, 2.98e-8, 1e-7, 6.1e-5, -6.1e-5,
                             3.4e38, 1e-45, 1.17e-38, 1.00390625, 1.01171875])
    # Float32 values exactly halfway between two bfloat16 values.
    ties = (torch.randint(0, 1 << 15, (512,), generator=g, dtype=torch.int32) << 16 | 0x8000).view(torch.float32)
    src = torch.cat([base, specials, ties])
    f64 = torch.randn(2048, generator=g, dtype=torch.float64) * torch.exp2(
        torch.randint(-140, 130, (2048,), generator=g).double())
    # Doubles exactly halfway between two float32 values, both parities.
    mids = torch.randn(256, generator=g).double()
    ulp = torch.abs(torch.nextafter(mids.float(), torch.tensor(float("inf"))).double() - mids.float().double())
    f64 = torch.cat([f64, mids.float().double() + ulp / 2, torch.tensor([1e300, -1e300, 1e-300, float("nan")],
                                                                          dtype=torch.float64)])
    entries = {
        "x.f16": src.half(), "x.f16.want": src.half().float(),
        "x.bf16": src.bfloat16().reshape(-1, 1), "x.bf16.want": src.bfloat16().float().reshape(-1, 1),
        "x.f64": f64.reshape(2, -1), "x.f64.want": f64.float().reshape(2, -1),
    }
    names = {torch.float64: "F64", torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}
    order = sorted(entries, key=lambda k: (-RANK[names[entries[k].dtype]], k))
    header, chunks, at = {"__metadata__": {"format": "pt", "origin": "torch"}}, [], 0
    for name in order:
        t = entries[name].contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        chunks.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main():
    d = sys.argv[1]
    n = check_go_files(d)
    write_reference(d + "/torch.safetensors")
    print(f"crosscheck: ok, {n} bf16 values match torch; wrote torch.safetensors")


if __name__ == "__main__":
    main()
