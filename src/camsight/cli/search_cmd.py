"""``camsight search``: find tracks by description (or by likeness), each with why it matched."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from camsight.cli.options import ConfigOpt, DataOpt, command_config, open_data, when_option
from camsight.cli.output import add_row, err_console, fail, local_time, out_console

if TYPE_CHECKING:
    from camsight.store.db import Store


def search(
    query: Annotated[
        str | None, typer.Argument(help="What to look for, in plain words.", show_default=False)
    ] = None,
    like: Annotated[
        int | None, typer.Option("--like", help="Find tracks that look like this track id.")
    ] = None,
    camera: Annotated[list[str] | None, typer.Option(help="Only this camera (repeatable).")] = None,
    since: Annotated[str | None, typer.Option(help="Only after this time (ISO, local time).")] = None,
    until: Annotated[str | None, typer.Option(help="Only before this time (ISO, local time).")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--class",
            help="Only this class: person, car, van, bus, motorcycle, bicycle, vehicle (repeatable).",
        ),
    ] = None,
    same_camera: Annotated[bool, typer.Option(help="With --like: only the same camera.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many results.")] = 20,
    embeddings: Annotated[
        str | None, typer.Option(help="Fuse visual similarity from this installed vision-language model.")
    ] = None,
    data: DataOpt = None,
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the hits as a JSON list.")] = False,
) -> None:
    """Search indexed footage by description, best match first, each with why it matched.

    Examples: camsight search "woman wearing a red hat";
    camsight search "white van" --since 2026-11-20T18:00; camsight search --like 42
    """
    from camsight.search.engine import SearchEngine

    if (query is None) == (like is None):
        fail("give either a QUERY or --like TRACK_ID (not both)")
    when_from, when_to = when_option(since, "--since"), when_option(until, "--until")
    cfg = command_config(config, data)
    encoder = None
    model = embeddings or cfg.embeddings.model
    if model:
        from camsight.search.embeddings import load_encoder

        encoder = load_encoder(model)
    store = open_data(data, cfg, create=False)
    engine = SearchEngine(store, encoder=encoder, embedding_weight=cfg.embeddings.weight)
    try:
        if like is not None:
            result = engine.more_like(like, same_camera=same_camera, limit=limit)
        else:
            assert query is not None
            result = engine.search(
                query, cameras=camera or (), since=when_from, until=when_to, classes=label or (), limit=limit
            )
        _audit(store, query, like, camera, len(result.hits))
    finally:
        store.close()
    err_console.print(f"[bold]looking for:[/] {escape(result.interpretation)}", soft_wrap=True)
    if result.reference is not None:
        ref = result.reference
        err_console.print(
            f"[bold]reference:[/] track {ref.track_id} ({ref.label} on {escape(ref.camera)}), "
            f"{_segments(ref.segments)}",
            soft_wrap=True,
        )
    for note in result.notes:
        err_console.print(f"[dim]{escape(note)}[/]", soft_wrap=True)
    if json_out:
        out_console.print_json(json.dumps([h.to_dict() for h in result.hits]))
        return
    if not result.hits:
        err_console.print("no matching tracks")
        return
    table = Table(show_lines=False)
    for col in ("#", "track", "camera", "class", "time", "match", "score", "why"):
        table.add_column(col)
    for rank, h in enumerate(result.hits, 1):
        # Files: seconds into the file; live cameras: when, in this machine's local time.
        span = (
            f"{h.start:.1f}-{h.end:.1f}s"
            if isinstance(h.start, float)
            else f"{local_time(h.start)} - {local_time(h.end)}"
        )
        if len(h.segments) > 1:  # one person's fragments, grouped into this one result
            span += f" ({_segments(h.segments)})"
        why = "; ".join(_why(e) for e in h.explanation) or "-"
        add_row(table, str(rank), str(h.track_id), h.camera, h.label, span, h.match, f"{h.score:.2f}", why)
    out_console.print(table)
    err_console.print(
        f"{len(result.hits)} shown of {result.candidates} candidates, {result.full_matches} full matches; "
        "thumbnails: camsight search ... --json"
    )


def _segments(segments: list[dict[str, Any]]) -> str:
    """A grouped result's tracks, e.g. ``3 segments: 4 0.0-6.6s, 11 15.0-20.8s, 18 22.8-40.2s``."""
    parts = [
        f"{s['track_id']} {s['start']:.1f}-{s['end']:.1f}s"
        if isinstance(s["start"], float)
        else f"{s['track_id']} {local_time(s['start'])}"
        for s in segments
    ]
    return f"{len(segments)} segment{'s' if len(segments) != 1 else ''}: " + ", ".join(parts)


def _why(item: dict[str, Any]) -> str:
    """One term of a hit's explanation: its verdict and what was read (each said once)."""
    mark = {True: "✓", False: "✗"}.get(item.get("matched"), "~")
    detail = item.get("detail") or f"{item['term']} {item['score']:.2f}"
    return f"{mark} {detail}"


def _audit(store: Store, query: str | None, like: int | None, cameras: list[str] | None, hits: int) -> None:
    """Record the search as the API does (who searched for what): the terminal's user is the actor."""
    from camsight.auth import audit

    detail: dict[str, Any] = {"query": query} if query is not None else {"like": like}
    audit.record(
        store, audit.Actor.cli(), audit.Action.SEARCH, target=",".join(cameras or []) or None,
        detail={**detail, "hits": hits},
    )  # fmt: skip
