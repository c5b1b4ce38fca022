"""Minimal safetensors reader/writer on top of json, struct and numpy.

The reference scripts run on Debian's python3-torch and python3-numpy, which
do not ship the `safetensors` package, so this module implements the format
directly:

    8 bytes   little-endian u64 N, the header length
    N bytes   JSON: {name: {"dtype", "shape", "data_offsets": [begin, end]},
                     "__metadata__": {str: str}}  (offsets relative to the data)
    rest      raw little-endian tensor bytes

Reading supports F64, F32, F16, BF16 and the integer types; BF16 has no numpy
dtype, so it is widened to float32 (exactly, by shifting the 16 bits into the
top half of a float32). Writing supports F64, F32, I64, I32 and U8.
"""

import json
import os
import struct

import numpy as np

# safetensors dtype name -> numpy little-endian dtype. BF16 is handled apart.
_READ_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}

_WRITE_DTYPES = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("uint8"): "U8",
}

# A header larger than this is almost certainly a corrupt length field.
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """Raised for malformed files or unsupported dtypes."""


def _itemsize(dtype):
    if dtype == "BF16":
        return 2
    if dtype not in _READ_DTYPES:
        raise SafetensorsError("unsupported dtype %r" % dtype)
    return _READ_DTYPES[dtype].itemsize


def read_header(path):
    """Returns (header dict without __metadata__, metadata dict, data offset)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise SafetensorsError("%s: file shorter than the 8-byte length" % path)
        (n,) = struct.unpack("<Q", raw)
        if n > _MAX_HEADER:
            raise SafetensorsError("%s: header length %d is implausible" % (path, n))
        text = f.read(n)
        if len(text) != n:
            raise SafetensorsError("%s: truncated header" % path)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError("%s: header is not JSON: %s" % (path, e)) from e
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not a JSON object" % path)
    meta = header.pop("__metadata__", None) or {}
    return header, meta, 8 + n


def load(path, widen=True):
    """Reads every tensor of a safetensors file into a dict of numpy arrays.

    With widen=True (the default) F16 and BF16 tensors come back as float32;
    otherwise F16 stays float16 (BF16 is always widened: numpy has no bf16).
    """
    header, _, start = read_header(path)
    size = os.path.getsize(path)
    data_len = size - start
    # Map the file rather than read it: checkpoints can be gigabytes and
    # every tensor is copied out anyway.
    if data_len > 0:
        blob = np.memmap(path, dtype=np.uint8, mode="r", offset=start, shape=(data_len,))
    else:
        blob = np.zeros(0, dtype=np.uint8)
    out = {}
    for name, info in header.items():
        try:
            dtype = info["dtype"]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise SafetensorsError("%s: tensor %r: bad header entry %r" % (path, name, info)) from e
        count = 1
        for d in shape:
            if d < 0:
                raise SafetensorsError("%s: tensor %r: negative dimension" % (path, name))
            count *= d
        want = count * _itemsize(dtype)
        if not (0 <= begin <= end <= data_len) or end - begin != want:
            raise SafetensorsError(
                "%s: tensor %r: offsets [%d, %d) do not hold %s%s (%d bytes) within %d data bytes"
                % (path, name, begin, end, dtype, shape, want, data_len))
        chunk = blob[begin:end]
        if dtype == "BF16":
            bits = chunk.view("<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.array(chunk.view(_READ_DTYPES[dtype]))  # copy out of the map
            if dtype == "F16" and widen:
                arr = arr.astype(np.float32)
        out[name] = arr.reshape(shape)
    del blob
    return out


def save(path, tensors, metadata=None):
    """Writes a dict name -> numpy array (F64/F32/I64/I32/U8) as safetensors.

    Tensors are laid out in sorted name order so that equal inputs give
    byte-identical files.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        kind = _WRITE_DTYPES.get(arr.dtype)
        if kind is None:
            raise SafetensorsError("tensor %r: cannot write dtype %s" % (name, arr.dtype))
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": kind,
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    # Pad with spaces so the data starts 8-byte aligned, as the reference
    # implementation does; readers that mmap rely on it.
    text += b" " * ((-len(text)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def to_bf16_bytes(arr):
    """Rounds float32 values to bfloat16 (nearest even) and returns the raw
    little-endian bytes. Only the self-tests need it, to build BF16 files."""
    bits = np.ascontiguousarray(arr, dtype="<f4").view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def save_raw(path, entries):
    """Writes pre-encoded tensors: entries is a list of (name, dtype, shape,
    bytes). Used to produce F16/BF16 files for testing the reader."""
    header = {}
    offset = 0
    for name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, data in entries:
            f.write(data)
