"""Real footage (PETS09) indexed into SQLite and into PostgreSQL (re-id vectors in pgvector): "more like this"
gives the same look-alikes, scores and references on both, the PostgreSQL one by its HNSW index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SHARED, cli_env, run_cli
from sqlalchemy import select

from camsight.search.engine import SearchEngine
from camsight.search.grouping import REID_MODEL
from camsight.store.db import Store, open_store
from camsight.store.models import Track, TrackEmbedding
from camsight.store.vectors import embedding_column

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OPENVINO = SHARED / "models" / "openvino"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the re-id model installed the way users install it."""
    if not (OPENVINO / f"{REID_MODEL}.xml").is_file():
        pytest.skip(f"the re-id model is not in {OPENVINO}")
    folder = tmp_path_factory.mktemp("reid-models")
    pulled = run_cli(
        "models", "pull", REID_MODEL, "--from", OPENVINO.parent, env=cli_env(CAMSIGHT_MODELS=str(folder))
    )
    assert pulled.returncode == 0, pulled.stderr
    return folder


def _index(clip: Path, yolox_model: Path, data: Path, models: Path, url: str | None) -> Store:
    extra = {"CAMSIGHT_MODELS": str(models)} | ({"CAMSIGHT_DATABASE_URL": url} if url else {})
    proc = run_cli(
        "index", clip, "--camera", "hall", "--fps", "2", "--end", "60",
        "--detector", "yolox", "--model", yolox_model, "--data", data, env=cli_env(**extra),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return open_store(data, url=url)


def _people(store: Store) -> dict[int, tuple[int, bytes]]:
    """Track id -> (local id, re-id vector) of every person track."""
    query = (
        select(Track.id, Track.local_id, TrackEmbedding.vector)
        .join(TrackEmbedding, TrackEmbedding.track_id == Track.id)
        .where(TrackEmbedding.model == REID_MODEL, Track.label == "person")
    )
    with store.engine.connect() as connection:
        return {r.id: (r.local_id, r.vector) for r in connection.execute(query)}


def _answer(store: Store, local: dict[int, int], track_id: int) -> dict[str, Any]:
    """A "more like this" answer in local ids (the two stores may number tracks differently)."""
    result = SearchEngine(store).more_like(track_id)
    ref = result.reference
    return {
        "hits": [
            (local[h.track_id], round(h.score, 3), [local[s["track_id"]] for s in h.segments])
            for h in result.hits
        ],
        "reference": None if ref is None else [local[s["track_id"]] for s in ref.segments],
        "notes": result.notes,
    }


def test_more_like_this_on_real_footage_is_the_same_on_postgresql(
    vtest: Path, yolox_model: Path, models: Path, tmp_path: Path, postgres_url: str
) -> None:
    sqlite = _index(vtest, yolox_model, tmp_path / "sqlite", models, None)
    pg = _index(vtest, yolox_model, tmp_path / "pg", models, postgres_url)
    try:
        assert pg.engine.dialect.name == "postgresql"
        with pg.engine.connect() as connection:
            kind = connection.exec_driver_sql(
                "SELECT udt_name FROM information_schema.columns "
                "WHERE table_name = 'track_embeddings' AND column_name = 'vector'"
            ).scalar()
            index = embedding_column(REID_MODEL).index_name(256)
            indexed = connection.exec_driver_sql(
                "SELECT to_regclass(%(n)s) IS NOT NULL", {"n": index}
            ).scalar()
        assert kind == "vector" and indexed  # the indexer's writes filled pgvector and made its index
        lite, post = _people(sqlite), _people(pg)
        assert len(lite) >= 3
        # The same vectors, bit for bit, through pgvector's text form.
        assert sorted(lite.values()) == sorted(post.values())
        local_lite = {tid: lid for tid, (lid, _) in lite.items()}
        local_pg = {tid: lid for tid, (lid, _) in post.items()}
        by_local = {lid: tid for tid, lid in local_pg.items()}
        found_any = False
        for tid, (lid, _) in sorted(lite.items()):
            want = _answer(sqlite, local_lite, tid)
            got = _answer(pg, local_pg, by_local[lid])
            assert got == want, lid
            found_any |= bool(want["hits"])
            assert all(score >= 0.6 for _, score, _ in want["hits"])
        assert found_any  # on PETS09 people look like others (or their own other tracks) above the cut-off
        vectors = np.stack([np.frombuffer(v, "<f4") for _, v in lite.values()])
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    finally:
        sqlite.close()
        pg.close()
