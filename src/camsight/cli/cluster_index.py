"""``camsight index --cluster ADDRESS``: the same indexing, on a Ray cluster (see docs/cluster.md)."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.progress import TextColumn

from camsight.cli.output import progress_bar
from camsight.config import Config
from camsight.pipeline.indexer import IndexResult, IndexSettings

if TYPE_CHECKING:
    from camsight.service.cluster import ClusterIndexer


def index_on_cluster(
    address: str,
    paths: list[Path],
    *,
    camera: str | None,
    settings: IndexSettings,
    config: Config,
    data: Path | None,
    chunk_seconds: float,
    force: bool,
    recorded_at: datetime | None,
    json_out: bool,
) -> None:
    """Index ``paths`` on the cluster at ``address`` with one progress bar, and print what was done.

    Exits 1 when a file failed or was damaged, 130 when interrupted (what
    was finished is kept: the same command finishes the job).
    """
    from camsight.cli.options import open_data
    from camsight.service.cluster import ClusterIndexer, import_ray, reach

    import_ray()  # not installed: one line that says how, before anything else
    reach(address)  # a wrong address: said before a store is created in --data
    store = open_data(data, config)
    try:
        cluster = ClusterIndexer(store, settings, config, chunk_seconds=chunk_seconds)
        for path in paths:
            cluster.check_camera(camera or path.stem)
        # Ray prints what its workers report (a worker that died) on stdout, from its own threads,
        # looking sys.stdout up each time: to stderr with the bar while joined, so stdout stays
        # the summary (--json must parse).
        with contextlib.redirect_stdout(sys.stderr):
            results = _run(cluster, address, paths, camera, force, recorded_at)
    finally:
        store.close()
    from camsight.cli.index_cmd import report_results

    stopped = "interrupted: finished chunks are kept; run the same command again to finish"
    report_results(results, json_out, cluster.failures, stopped if cluster.interrupted else None)


def _run(
    cluster: ClusterIndexer,
    address: str,
    paths: list[Path],
    camera: str | None,
    force: bool,
    recorded_at: datetime | None,
) -> list[IndexResult]:
    """Join the cluster and index with one progress bar over every file's chunks."""
    from camsight.service.cluster import connect

    ray = connect(address)
    try:
        with progress_bar(TextColumn("{task.fields[note]}")) as bar:
            task = bar.add_task(f"cluster {escape(address)}", total=None, note="")

            def progress(done: float, total: float) -> None:
                bar.update(task, completed=done, total=total or None, note=f"{done:.0f}/{total:.0f} s")

            def notice(text: str) -> None:
                bar.console.print(f"[yellow]note:[/] {escape(text)}", soft_wrap=True)

            cluster.progress, cluster.notice = progress, notice
            return cluster.index(ray, paths, camera, force=force, recorded_at=recorded_at)
    finally:
        ray.shutdown()
