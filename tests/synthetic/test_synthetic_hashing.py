"""Counter-based hashing: reference vectors and process-independence."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from etl.synthetic.hashing import key_of, mix64, mix_array, normal, text_key, uniform

# The first outputs of the reference SplitMix64 generator seeded with 0 (Vigna's
# splitmix64.c). Output n (from 0) finalises (n + 1) * 0x9E3779B97F4A7C15, and mix64 adds
# one golden step itself, so mix64(n * golden) is output n.
SPLITMIX_SEED0 = [
    0xE220A8397B1DCDAF,  # n = 0
    0x6E789E6AA1B965F4,  # n = 1
    0x06C45D188009454F,  # n = 2
]
GOLDEN = 0x9E3779B97F4A7C15


def test_mix64_matches_reference_splitmix64() -> None:
    for n, expected in enumerate(SPLITMIX_SEED0):
        assert mix64((n * GOLDEN) & (2**64 - 1)) == expected


def test_array_mix_equals_scalar_mix() -> None:
    values = [0, 1, 2**63, 2**64 - 1, 123456789]
    got = mix_array(np.array(values, dtype=np.uint64))
    assert [int(x) for x in got] == [mix64(v) for v in values]


def test_text_key_does_not_depend_on_python_hash_salt() -> None:
    code = "from etl.synthetic.hashing import text_key; print(text_key('600000.SH'))"
    outputs = set()
    for salt in ("1", "2", "random"):
        env = {"PYTHONHASHSEED": salt}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        )
        outputs.add(out.stdout.strip())
    assert outputs == {str(text_key("600000.SH"))}


def test_keys_separate_seeds_and_parts() -> None:
    keys = {key_of(0, "A"), key_of(1, "A"), key_of(0, "B"), key_of(0, "A", 1), key_of(0, 1, "A")}
    assert len(keys) == 5


def test_uniform_and_normal_have_the_expected_shape() -> None:
    counters = np.arange(200_000)
    u = uniform(key_of(0, "u"), counters)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    z = normal(key_of(0, "z"), counters)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert np.abs(z).max() < 3.5  # bounded: no absurd price jumps


def test_consecutive_counters_are_not_correlated() -> None:
    u = uniform(key_of(0, "corr"), np.arange(100_000))
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.02
