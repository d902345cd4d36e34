"""A small ONNX graph writer: nodes, float/int64 constants and the protobuf bytes ONNX Runtime reads.

The `onnx` package would do this too, but importing it costs about a second at start-up (its
numeric-types extension); the few messages a graph of plain operators needs are written here
straight in protobuf's wire format. Field numbers are those of onnx/onnx.proto (proto2).
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

IR_VERSION = 8
FLOAT, INT64 = 1, 7  # TensorProto.DataType
_TENSOR_TYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7  # AttributeProto.AttributeType


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, as protobuf does
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, value: int) -> bytes:
    return _key(field, 0) + _varint(value)


def _bytes(field: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return _key(field, 2) + _varint(len(data)) + data


def _float(field: int, value: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", value)


def _attribute(name: str, value: Any) -> bytes:
    if isinstance(value, float):
        return _bytes(1, name) + _float(2, value) + _int(20, _ATTR_FLOAT)
    if isinstance(value, int):
        return _bytes(1, name) + _int(3, value) + _int(20, _ATTR_INT)
    return _bytes(1, name) + b"".join(_int(8, v) for v in value) + _int(20, _ATTR_INTS)


def _value_info(name: str, shape: list[int | str]) -> bytes:
    dims = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in shape)
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


class Graph:
    """An ONNX graph built node by node; `model()` gives the serialised ModelProto."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._nodes: list[bytes] = []
        self._constants: list[bytes] = []
        self._inputs: list[bytes] = []
        self._outputs: list[bytes] = []

    def input(self, name: str, shape: list[int | str]) -> str:
        """Declare a float input; `shape` mixes fixed sizes and named dynamic axes."""
        self._inputs.append(_value_info(name, shape))
        return name

    def output(self, name: str, shape: list[int | str]) -> str:
        """Declare the float value `name` as an output."""
        self._outputs.append(_value_info(name, shape))
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        """A float32 or int64 constant (an initializer)."""
        array = np.ascontiguousarray(value)
        message = b"".join(_int(1, d) for d in array.shape)
        message += _int(2, _TENSOR_TYPES[array.dtype]) + _bytes(8, name) + _bytes(9, array.tobytes())
        self._constants.append(message)
        return name

    def node(self, op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        """Add an operator with one output named `name`; returns that name."""
        message = b"".join(_bytes(1, i) for i in inputs) + _bytes(2, name) + _bytes(3, name) + _bytes(4, op)
        message += b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items())
        self._nodes.append(message)
        return name

    def model(self, opset: int) -> bytes:
        """The ModelProto bytes, default operator domain at `opset`."""
        graph = b"".join(_bytes(1, n) for n in self._nodes) + _bytes(2, self.name)
        graph += b"".join(_bytes(5, c) for c in self._constants)
        graph += b"".join(_bytes(11, i) for i in self._inputs) + b"".join(
            _bytes(12, o) for o in self._outputs
        )
        opset_id = _bytes(1, "") + _int(2, opset)
        return _int(1, IR_VERSION) + _bytes(2, "baton") + _bytes(7, graph) + _bytes(8, opset_id)
