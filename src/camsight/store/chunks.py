"""Which chunks of a file being indexed on a cluster are done, and their results until the file is.

A file indexed in chunks is one source (status ``indexing`` until every chunk
is in). Each finished chunk's result (opaque bytes to the store) is kept in the
source's media folder, ``chunks/<n>.bin``, and recorded as done in the
``meta`` table under ``index_chunks:<source id>`` with the chunk plan it
belongs to. A re-run of the same command finds the source, the same plan and
the done chunks, and sends only the others; when all are in, the tracks are
stitched and stored and this state is removed. No new table: the meta table
is the store's small key/value state.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select

from camsight.errors import StoreError
from camsight.store.db import Store
from camsight.store.media import source_media_dir
from camsight.store.models import Camera, Meta, Source, Track
from camsight.store.repository import bump_revision

PREFIX = "index_chunks:"


@dataclass(frozen=True)
class ChunkState:
    """A source being indexed in chunks: its plan and the chunks already done."""

    source_id: int
    camera_id: int
    plan: str
    done: frozenset[int]
    wallclock_start: datetime | None = None


def _key(source_id: int) -> str:
    return f"{PREFIX}{source_id}"


def chunk_dir(store: Store, source_id: int) -> Path:
    """Where a source's finished chunks wait for the others."""
    return source_media_dir(store.media, source_id) / "chunks"


def begin(store: Store, source_id: int, plan: str) -> None:
    """Record that ``source_id`` is indexed in chunks by ``plan`` (none done yet)."""
    with store.session() as session:
        row = session.get(Meta, _key(source_id))
        value = json.dumps({"plan": plan, "done": []})
        if row is None:
            session.add(Meta(key=_key(source_id), value=value))
        else:
            row.value = value


def resumable(store: Store, camera: str, fingerprint: str, settings_key: str, plan: str) -> ChunkState | None:
    """The unfinished chunked indexing of this file with these settings and this plan, if any."""
    with store.session() as session:
        # At most one: a camera's file (by content) is one source.
        source = session.scalar(
            select(Source)
            .join(Camera, Source.camera_id == Camera.id)
            .where(
                Camera.name == camera,
                Source.fingerprint == fingerprint,
                Source.status == "indexing",
                Source.settings_key == settings_key,
            )
        )
        row = None if source is None else session.get(Meta, _key(source.id))
        if source is None or row is None:
            return None
        value = row.value
        state = json.loads(value)
        if state.get("plan") != plan:
            return None
        done = frozenset(
            int(i) for i in state.get("done", []) if (chunk_dir(store, source.id) / f"{int(i)}.bin").is_file()
        )
        return ChunkState(source.id, source.camera_id, plan, done, source.wallclock_start)


def save_chunk(store: Store, source_id: int, index: int, payload: bytes) -> None:
    """Keep a finished chunk's result and mark it done (the file first: a mark never lacks its file)."""
    folder = chunk_dir(store, source_id)
    path = folder / f"{index}.bin"
    tmp = path.with_suffix(".tmp")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(payload)
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    with store.session() as session:
        row = session.get(Meta, _key(source_id))
        if row is None:
            raise StoreError(f"source {source_id} is not being indexed in chunks")
        state = json.loads(row.value)
        state["done"] = sorted(set(state.get("done", [])) | {index})
        row.value = json.dumps(state)


def load_chunk(store: Store, source_id: int, index: int) -> bytes:
    """A finished chunk's result, as :func:`save_chunk` kept it."""
    path = chunk_dir(store, source_id) / f"{index}.bin"
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}") from None


def clear_tracks(store: Store, source_id: int) -> None:
    """Remove tracks stored for a source before its stitched tracks are (a crash may have left some)."""
    with store.session() as session:
        gone = session.execute(delete(Track).where(Track.source_id == source_id)).rowcount
        if gone:
            bump_revision(session)


def finish(store: Store, source_id: int) -> None:
    """Forget the chunk state of a source whose tracks are stored, and its kept chunk results."""
    with store.session() as session:
        session.execute(delete(Meta).where(Meta.key == _key(source_id)))
    shutil.rmtree(chunk_dir(store, source_id), ignore_errors=True)
