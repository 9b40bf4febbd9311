"""Writes dtypes.safetensors: one tensor of every dtype FuncFlow's Safetensors.load reads, encoded with
Python's struct module (independent of .NET's decoders), for SafetensorsDtypeTests.fs.

Run from the repository root (any Python 3; no safetensors package needed):
    /usr/bin/python3 tests/FuncFlow.Tests/reference/make_safetensors_fixture.py

The values are exact in their dtype and chosen so that a wrong decoding gives another number: negative
values and extremes for a wrong sign or signedness, multi-byte values whose bytes differ for a wrong
endianness, the largest, smallest normal and subnormal half and bfloat16 values for a wrong exponent bias.
The data section stores the tensors in a different order from the header (the header lists them in
DTYPES order, the data holds them in reverse), and "first"/"second" are two same-shape F32 tensors whose
data is swapped, so a reader that walks the header in order instead of seeking to each tensor's
data_offsets reads wrong values.
"""

import json
import os
import struct


def bf16(x):
    # bfloat16 is the top half of a float32; these values are exact in bfloat16, so no rounding is needed.
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    assert bits & 0xFFFF == 0, x
    return struct.pack("<H", bits >> 16)


def packer(fmt):
    return lambda x: struct.pack("<" + fmt, x)


INF = float("inf")

# (name, dtype, shape, values, encoder). The expected values are written out again in the F# test.
DTYPES = [
    ("f64", "F64", [4], [-1.5, 1e300, 2.0 ** -1074, -0.1], packer("d")),
    ("f32", "F32", [3], [-2.5, 3.4028234663852886e38, 2.0 ** -149], packer("f")),
    ("f16", "F16", [7], [1.0, -2.0, 65504.0, 2.0 ** -14, 2.0 ** -24, 0.333251953125, -INF], packer("e")),
    ("bf16", "BF16", [6], [1.0, -2.0, (2.0 - 2.0 ** -7) * 2.0 ** 127, 2.0 ** -133, 0.333984375, -INF], bf16),
    ("i64", "I64", [4], [-(2 ** 53), -1, 1234567890123, 2 ** 62], packer("q")),
    ("u64", "U64", [3], [2 ** 64 - 1, 2 ** 63, 1], packer("Q")),
    ("i32", "I32", [2, 2], [-(2 ** 31), -1, 2 ** 31 - 1, 65536], packer("i")),
    ("u32", "U32", [3], [2 ** 32 - 1, 2 ** 31, 1], packer("I")),
    ("i16", "I16", [4], [-32768, -1, 32767, 256], packer("h")),
    ("u16", "U16", [3], [65535, 32768, 1], packer("H")),
    ("i8", "I8", [4], [-128, -1, 127, 0], packer("b")),
    ("u8", "U8", [4], [255, 128, 0, 1], packer("B")),
    ("bool", "BOOL", [3], [True, False, True], packer("?")),
    ("first", "F32", [2], [1.25, -3.5], packer("f")),
    ("second", "F32", [2], [7.75, 0.5], packer("f")),
]


def main():
    blobs = {name: b"".join(encode(v) for v in values) for name, _, _, values, encode in DTYPES}
    # The data holds the tensors in the reverse of the header's order ("second" before "first").
    order = [name for name, *_ in reversed(DTYPES)]
    offsets, offset = {}, 0
    for name in order:
        offsets[name] = [offset, offset + len(blobs[name])]
        offset += len(blobs[name])
    header = {name: {"dtype": dtype, "shape": shape, "data_offsets": offsets[name]} for name, dtype, shape, _, _ in DTYPES}
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dtypes.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name in order:
            f.write(blobs[name])


if __name__ == "__main__":
    main()
