"""Counter-based random numbers: every synthetic value is a hash of its key.

A stateful generator would make a bar depend on how many bars were drawn before it, so the
same request split into two ranges would give different data. Here a value is
``splitmix64(key ^ counter)``, where the key folds in (seed, symbol, stream, freq) and the
counter is the bar's timestamp (or a day, a period...): any subset of bars is computed
without the others.

The symbol enters through :func:`text_key`, a BLAKE2b digest, because Python's ``hash()`` of
a string is salted per process.
"""

from __future__ import annotations

import hashlib
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "MASK64",
    "U64",
    "key_of",
    "mix64",
    "mix_array",
    "normal",
    "signed",
    "text_key",
    "uniform",
]

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_M1: Final = 0xBF58476D1CE4E5B9
_M2: Final = 0x94D049BB133111EB
_GOLDEN_U: Final = np.uint64(_GOLDEN)
_M1_U: Final = np.uint64(_M1)
_M2_U: Final = np.uint64(_M2)
_S30: Final = np.uint64(30)
_S27: Final = np.uint64(27)
_S31: Final = np.uint64(31)
_S11: Final = np.uint64(11)
_TWO_POW_M53: Final = 1.0 / (1 << 53)


def mix64(x: int) -> int:
    """splitmix64 of one Python int (used to build keys without numpy scalar overflow)."""
    z = (x + _GOLDEN) & MASK64
    z = ((z ^ (z >> 30)) * _M1) & MASK64
    z = ((z ^ (z >> 27)) * _M2) & MASK64
    return z ^ (z >> 31)


def mix_array(x: U64) -> U64:
    """splitmix64 of every element; uint64 array arithmetic wraps, which is what we want."""
    z = x + _GOLDEN_U
    z = (z ^ (z >> _S30)) * _M1_U
    z = (z ^ (z >> _S27)) * _M2_U
    out: U64 = z ^ (z >> _S31)
    return out


def text_key(text: str) -> int:
    """A stable 64-bit key of a string, the same in every process and on every machine."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def key_of(seed: int, *parts: int | str) -> int:
    """Fold a seed and parts (ints or strings) into one 64-bit key."""
    h = mix64(seed & MASK64)
    for part in parts:
        value = text_key(part) if isinstance(part, str) else part & MASK64
        h = mix64(h ^ value)
    return h


def _hash(key: int, counters: npt.ArrayLike) -> U64:
    arr = np.atleast_1d(np.asarray(counters))
    if arr.dtype != np.uint64:
        arr = arr.astype(np.int64).view(np.uint64)
    return mix_array(arr ^ np.uint64(key))


def uniform(key: int, counters: npt.ArrayLike) -> F64:
    """Uniform floats in ``[0, 1)``, one per counter."""
    h = _hash(key, counters)
    out: F64 = (h >> _S11).astype(np.float64) * _TWO_POW_M53
    return out


def signed(key: int, counters: npt.ArrayLike) -> F64:
    """Uniform floats in ``[-1, 1)``."""
    out: F64 = uniform(key, counters) * 2.0 - 1.0
    return out


def normal(key: int, counters: npt.ArrayLike) -> F64:
    """Roughly standard normal values (Irwin-Hall of 4 uniforms): bounded by about +-3.5,
    which keeps prices away from absurd jumps."""
    base = _hash(key, counters)
    total = np.zeros(base.shape, dtype=np.float64)
    h = base
    for _ in range(4):
        h = mix_array(h)
        total += (h >> _S11).astype(np.float64) * _TWO_POW_M53
    out: F64 = (total - 2.0) * np.sqrt(3.0)
    return out
