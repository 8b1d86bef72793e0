"""File digests: what ``etl verify`` compares, for files written now (XXH3-128) and files
whose manifest was written with SHA-256 before."""

from __future__ import annotations

import hashlib
from pathlib import Path

from etl.lake.parquet_io import digest_matches, file_digest


def test_digest_finds_one_flipped_bit_and_a_truncation(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    path.write_bytes(bytes(range(256)) * 4096)
    recorded = file_digest(path)
    assert recorded.startswith("xxh3_128:") and len(recorded) == len("xxh3_128:") + 32
    assert digest_matches(path, recorded)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    assert not digest_matches(path, recorded)
    path.write_bytes(bytes(range(256)) * 2048)
    assert not digest_matches(path, recorded)


def test_a_manifest_from_before_keeps_its_sha256_meaning(tmp_path: Path) -> None:
    path = tmp_path / "old.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 1000 + b"PAR1")
    legacy = hashlib.sha256(path.read_bytes()).hexdigest()  # bare hex, as manifests held it
    assert digest_matches(path, legacy)
    path.write_bytes(b"PAR1" + b"\x01" * 1000 + b"PAR1")
    assert not digest_matches(path, legacy)


def test_an_empty_file_and_an_unknown_algorithm(tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    assert digest_matches(empty, file_digest(empty))
    assert not digest_matches(empty, "md4:" + "0" * 32)  # never a silent pass
