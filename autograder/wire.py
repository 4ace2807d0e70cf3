"""The one channel between the grader and a sandbox: length-prefixed frames over pipes.

A frame is an 8-byte header (two big-endian uint32: JSON length, payload length), a JSON
document and the raw bytes of the NumPy arrays it refers to. Arrays travel as bytes, not
as JSON lists, so a capstone training run (hundreds of calls with thousands of numbers
each) costs milliseconds.

Both sides use this module, and it is one of the three files mounted in the sandbox, so
it imports nothing but the standard library and NumPy. The grader decodes what the
sandbox sends with ``trusted=False``: only numeric dtypes, sizes that add up, bounded
nesting and total size; anything else is a :class:`WireError`, never an object built
from untrusted bytes (no pickle anywhere).
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time

import numpy as np

HEADER = struct.Struct(">II")
MAX_FRAME = 256 * 2**20      # bytes in one frame from the sandbox
MAX_DEPTH = 32               # nesting of sequences and dicts
NUMERIC_KINDS = "biufc"      # bool, int, uint, float, complex


class WireError(ValueError):
    """A frame that is malformed, too large or not allowed (always the sender's fault)."""


class Closed(EOFError):
    """The other side closed the channel (the sandbox ended)."""


class TimedOut(TimeoutError):
    """No complete frame before the deadline."""


# --- values -------------------------------------------------------------------------------------

def encode(value, buffers: list, handles: dict | None = None, depth: int = 0):
    """Plain JSON for ``value``; arrays appended to ``buffers``. Objects that are not plain data
    (a student's own state class) are kept in ``handles`` and sent as a handle number, when a
    handle table is given; otherwise as their repr."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC_KINDS:
        data = np.ascontiguousarray(value)
        buffers.append(data.tobytes())
        return {"__array__": len(buffers) - 1, "dtype": data.dtype.str, "shape": list(data.shape)}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return {"__seq__": [encode(v, buffers, handles, depth + 1) for v in value],
                "tuple": isinstance(value, tuple)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: encode(v, buffers, handles, depth + 1) for k, v in value.items()}}
    if handles is not None:
        handles[id(value)] = value
        return {"__handle__": id(value), "repr": repr(value)[:200]}
    return {"__repr__": repr(value)[:200]}


class Handle:
    """An object that lives in the sandbox, seen from the grader: opaque, compared by number."""

    def __init__(self, number: int, text: str):
        self.number, self.text = number, text

    def __eq__(self, other):
        return isinstance(other, Handle) and other.number == self.number

    def __hash__(self):
        return hash(self.number)

    def __repr__(self):
        return self.text


def decode(value, buffers: list, *, trusted: bool, handles: dict | None = None, depth: int = 0):
    """The inverse of :func:`encode`. With a handle table, handles become the objects again
    (the sandbox's side); without, :class:`Handle` stand-ins (the grader's side)."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list) and not trusted:
        raise WireError("bare JSON list")
    if not isinstance(value, dict):
        if trusted and isinstance(value, list):
            return value
        raise WireError(f"unexpected {type(value).__name__}")
    if "__array__" in value:
        index, dtype, shape = value.get("__array__"), value.get("dtype"), value.get("shape")
        if not (isinstance(index, int) and 0 <= index < len(buffers) and isinstance(dtype, str)
                and isinstance(shape, list) and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise WireError("malformed array")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise WireError(f"unknown dtype {dtype!r}") from None
        if dt.kind not in NUMERIC_KINDS or dt.hasobject:
            raise WireError(f"dtype {dtype!r} is not numeric")
        if math.prod(shape) * dt.itemsize != len(buffers[index]):
            raise WireError("array size does not match its shape")
        return np.frombuffer(buffers[index], dtype=dt).reshape(shape).copy()
    if "__seq__" in value:
        items = value["__seq__"]
        if not isinstance(items, list):
            raise WireError("malformed sequence")
        out = [decode(v, buffers, trusted=trusted, handles=handles, depth=depth + 1) for v in items]
        return tuple(out) if value.get("tuple") else out
    if "__dict__" in value:
        items = value["__dict__"]
        if not isinstance(items, dict):
            raise WireError("malformed dict")
        return {str(k): decode(v, buffers, trusted=trusted, handles=handles, depth=depth + 1)
                for k, v in items.items()}
    if "__float__" in value:
        text = value["__float__"]
        if text not in ("nan", "inf", "-inf"):
            raise WireError("malformed float")
        return float(text)
    if "__handle__" in value:
        number = value["__handle__"]
        if not isinstance(number, int):
            raise WireError("malformed handle")
        if handles is not None:
            if number not in handles:
                raise WireError("unknown handle")
            return handles[number]
        return Handle(number, str(value.get("repr", ""))[:200])
    if "__repr__" in value:
        return str(value["__repr__"])[:200]
    if trusted:
        return {k: decode(v, buffers, trusted=trusted, handles=handles, depth=depth + 1) for k, v in value.items()}
    raise WireError("unknown value tag")


# --- frames -------------------------------------------------------------------------------------

def pack(message: dict, handles: dict | None = None) -> bytes:
    """One frame for ``message``; every value under its "data" key is encoded with arrays as bytes."""
    buffers: list = []
    body = dict(message)
    if "data" in body:
        body["data"] = encode(body["data"], buffers, handles)
    body["buffers"] = [len(b) for b in buffers]
    text = json.dumps(body, allow_nan=False).encode()
    payload = b"".join(buffers)
    return HEADER.pack(len(text), len(payload)) + text + payload


def unpack(text: bytes, payload: bytes, *, trusted: bool, handles: dict | None = None) -> dict:
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError(f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise WireError("a frame must hold a JSON object")
    sizes = body.pop("buffers", [])
    if not isinstance(sizes, list) or not all(isinstance(s, int) and s >= 0 for s in sizes) \
            or sum(sizes) != len(payload):
        raise WireError("buffer sizes do not add up")
    buffers, offset = [], 0
    for size in sizes:
        buffers.append(payload[offset:offset + size])
        offset += size
    if "data" in body:
        body["data"] = decode(body["data"], buffers, trusted=trusted, handles=handles)
    return body


def send(fd: int, message: dict, handles: dict | None = None) -> None:
    data = memoryview(pack(message, handles))
    while data:
        written = os.write(fd, data)
        data = data[written:]


class Reader:
    """Reads frames from a file descriptor, with a deadline and a size cap."""

    def __init__(self, fd: int, *, trusted: bool, max_frame: int = MAX_FRAME):
        self.fd, self.trusted, self.max_frame = fd, trusted, max_frame
        self.buffer = bytearray()

    def _fill(self, need: int, deadline: float | None) -> None:
        while len(self.buffer) < need:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                    raise TimedOut()
            chunk = os.read(self.fd, max(need - len(self.buffer), 1 << 16))
            if not chunk:
                raise Closed()
            self.buffer += chunk

    def read(self, deadline: float | None = None, handles: dict | None = None) -> dict:
        self._fill(HEADER.size, deadline)
        n_text, n_payload = HEADER.unpack_from(self.buffer)
        if n_text + n_payload > self.max_frame:
            raise WireError(f"frame of {n_text + n_payload} bytes is over the {self.max_frame}-byte cap")
        total = HEADER.size + n_text + n_payload
        self._fill(total, deadline)
        frame = bytes(self.buffer[:total])
        del self.buffer[:total]
        return unpack(frame[HEADER.size:HEADER.size + n_text], frame[HEADER.size + n_text:],
                      trusted=self.trusted, handles=handles)
