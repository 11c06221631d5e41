"""The NumPy side of the checkpoint_numpy test: reads a typegrad checkpoint with nothing but json
and numpy.frombuffer (the safetensors layout), checks its values, and writes one back.
    numpy_checkpoint.py check <file written by checkpoint_tool>
    numpy_checkpoint.py write <file for checkpoint_tool read>
"""
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, f"header length {n} is not padded to 8 bytes"
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    dtypes = {"F32": "<f4", "F64": "<f8"}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    return header.get("__metadata__", {}), tensors


def check(path):
    metadata, t = read_safetensors(path)
    assert metadata["note"] == "written by typegrad", metadata
    assert metadata["typegrad.optimizer"] == "adam" and metadata["typegrad.steps"] == "1", metadata
    assert t["w"].dtype == np.float32 and t["w"].shape == (2, 3)
    np.testing.assert_array_equal(t["w"], (0.5 * np.arange(6) - 1).reshape(2, 3))
    np.testing.assert_array_equal(t["b"], 0.25 * np.arange(3))
    for name in ("w", "b"):
        np.testing.assert_allclose(t[f"adam.m.{name}"], 0.1, rtol=1e-6)
        np.testing.assert_allclose(t[f"adam.v.{name}"], 0.001, rtol=1e-4)  # (1 - beta2) rounded in float
        assert t[f"adam.m.{name}"].shape == t[name].shape
    print(f"numpy read {len(t)} tensors from {path}")


def write(path):
    tensors = {"b": -np.arange(3, dtype="<f4"), "w": (2 * np.arange(6, dtype="<f4") + 0.5).reshape(2, 3)}
    header, offset, body = {"__metadata__": {"written_by": "numpy"}}, 0, b""
    for name, a in tensors.items():
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        body += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)


if __name__ == "__main__":
    {"check": check, "write": write}[sys.argv[1]](sys.argv[2])
