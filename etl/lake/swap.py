"""Publishing a partition's next state, atomically even where directories cannot be exchanged.

The partition's next manifest is written first, as ``<manifest>.pending``: it is the journal
of the swap, naming the staging folder and the aside folder the swap uses. Then

* with ``renameat2(RENAME_EXCHANGE)``: one call exchanges staging and partition;
* without it (NFS, SMB, most FUSE file systems, or when forced off): the partition is
  renamed aside, then staging is renamed to the partition (readers see the partition absent
  for that instant, never doubled);

and the pending manifest is renamed over the manifest, which ends the commit. A process
killed at any step leaves a journal that :func:`recover` settles under the partition lock,
by what the partition folder holds: the new files (the swap happened: publish the manifest),
no folder (half of the fallback: staging holds the complete new state, so rename it in), or
the old files (the swap never happened: drop staging and the journal). Staging and aside
folders that no journal names are leftovers of settled or never-swapped commits, so the
sweep may delete them: it can never delete the only copy of a partition.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path

from etl import schema as schemas
from etl.dataroot import DataRoot, PartitionKey
from etl.errors import LakeError
from etl.fsutil import atomic_write_bytes, exchange_dirs, fsync_dir, remove_tree
from etl.locks import try_lock

__all__ = ["aside_of", "publish", "recover", "swap_in", "sweep", "write_journal"]

log = logging.getLogger(__name__)


def aside_of(staging: Path) -> Path:
    """Where the fallback parks the partition's previous state (a staging-area name)."""
    return staging.with_name(staging.name + ".old")


def write_journal(pending: Path, manifest_json: bytes, staging: Path) -> None:
    """The next manifest plus the names of the folders the swap will move."""
    doc = json.loads(manifest_json)
    doc["swap"] = {"staging": staging.name, "aside": aside_of(staging).name}
    atomic_write_bytes(pending, json.dumps(doc, separators=(",", ":")).encode("utf-8"))


def swap_in(staging: Path, folder: Path, *, exchange: bool = True) -> Path | None:
    """Make ``staging`` the partition; returns the folder now holding the previous state."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not folder.exists():
        staging.rename(folder)
        fsync_dir(folder.parent)
        return None
    if exchange and exchange_dirs(staging, folder):
        fsync_dir(folder.parent)
        return staging
    aside = aside_of(staging)
    folder.rename(aside)
    staging.rename(folder)
    fsync_dir(folder.parent)
    fsync_dir(aside.parent)
    return aside


def publish(pending: Path, manifest: Path) -> None:
    """The journal becomes the manifest: the commit is complete."""
    pending.replace(manifest)
    fsync_dir(manifest.parent)


def _names(folder: Path) -> set[str] | None:
    if not folder.is_dir():
        return None
    return {p.name for p in folder.iterdir() if p.suffix == ".parquet"}


def recover(paths: DataRoot, dataset: str, key: PartitionKey) -> str | None:
    """Settle an interrupted swap of one partition (the caller holds its lock). Returns
    what was done (``published``, ``rolled forward``, ``rolled back``) or None."""
    manifest = paths.manifest(dataset, key)
    pending = paths.manifest_pending(dataset, key)
    try:
        doc = json.loads(pending.read_bytes())
        new = {f["name"] for f in doc["files"]}
        staging = paths.staging / doc["swap"]["staging"]
        aside = paths.staging / doc["swap"]["aside"]
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # Torn before the swap could start (it is written atomically, so only by hand).
        log.warning("dropping unreadable swap journal %s", pending)
        pending.unlink(missing_ok=True)
        return "rolled back"
    folder = paths.partition(dataset, key)
    current = _names(folder)
    if current == new:
        outcome = "published"
    elif current is None and _names(staging) == new:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(folder)
        fsync_dir(folder.parent)
        outcome = "rolled forward"
    elif current is None and aside.is_dir():
        aside.rename(folder)
        fsync_dir(folder.parent)
        pending.unlink()
        _clean(staging, aside)
        return "rolled back"
    else:
        pending.unlink()
        _clean(staging, aside)
        return "rolled back"
    publish(pending, manifest)
    _clean(staging, aside)
    log.info("settled an interrupted commit of %s/%s: %s", dataset, key.relpath, outcome)
    return outcome


def sweep(paths: DataRoot) -> int:
    """Settle interrupted swaps, then remove staging folders left by killed writers
    (only once their partition lock is free); returns how many folders were removed."""
    for pending in sorted(paths.manifests.rglob("*.json.pending")):
        _recover_journal(paths, pending)
    staging = paths.staging
    if not staging.is_dir():
        return 0
    removed = 0
    for entry in staging.iterdir():
        parts = entry.name.split("~")
        if len(parts) < 3:
            remove_tree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed += 1
            continue
        dataset, flat = parts[0], "~".join(parts[1:-1])
        try:
            lock = try_lock(paths.lock_by_flat(dataset, flat))
            key = PartitionKey.parse(schemas.get(dataset), flat.replace("~", "/"))
        except (LakeError, KeyError):
            continue  # not a name this lake gives: leave it for a person to look at
        if lock is None:
            continue  # a live writer owns it
        try:
            # A journal written since the first pass names this folder: settle it first.
            recover(paths, dataset, key)
            if entry.exists():
                remove_tree(entry)
                removed += 1
        finally:
            lock.release()
    return removed


def _recover_journal(paths: DataRoot, pending: Path) -> None:
    try:
        doc = json.loads(pending.read_bytes())
        schema = schemas.get(doc["dataset"])
        key = PartitionKey.parse(schema, doc["path"])
    except (OSError, ValueError, KeyError, TypeError, LakeError):
        return  # not ours to settle: leave it for a person to look at
    lock = try_lock(paths.lock(schema.name, key))
    if lock is None:
        return  # its writer is alive, or the commit that follows will settle it
    try:
        recover(paths, schema.name, key)
    finally:
        lock.release()


def _clean(*folders: Path) -> None:
    for folder in folders:
        with contextlib.suppress(FileNotFoundError):
            remove_tree(folder)
