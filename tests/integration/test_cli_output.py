"""Piped CLI output does not depend on the terminal width: no line is wrapped, no table cut.

Scripts and logs read what `camsight` prints; with rich's defaults a message
was split over two lines at 80 columns (or at $COLUMNS), so a grep for
"sha256 verified" failed depending on who ran it. Every run here sets a
narrow COLUMNS and reads the output through a pipe, as a script would.
"""

from __future__ import annotations

import pytest
from conftest import YOLOX_ARGS, cli_env, run_cli

from camsight.search.model_registry import load_registry

pytestmark = pytest.mark.integration

NARROW = cli_env(COLUMNS="40")

#: Longer than 40 columns on its own, so any wrapping or cutting splits it.
LONG = "a-name-much-wider-than-the-forty-columns-of-this-terminal"


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_a_long_message_stays_on_one_line(tmp_path):
    folder = tmp_path / LONG
    folder.mkdir()
    config = folder / "camsight.yaml"
    config.write_text("{}\n")
    proc = run_cli("config", "check", config, env=NARROW)
    assert proc.returncode == 0, proc.stderr
    assert lines_with(proc.stdout, "config OK") == [f"config OK ({config})"]


def test_an_index_table_and_a_stderr_message_stay_whole(tmp_path, clip_factory, yolox_model):
    clip = clip_factory(tmp_path / f"{LONG}.mp4", frames=10)
    data = tmp_path / "data"
    proc = run_cli("index", clip, "--camera", LONG, *YOLOX_ARGS, "--data", data, env=NARROW)
    assert proc.returncode == 0, proc.stderr
    # The summary table's row holds the whole file and camera names, in their cells.
    (row,) = lines_with(proc.stdout, clip.name)
    cells = [cell.strip() for cell in row.strip("│ ").split("│")]
    assert cells[:3] == [clip.name, LONG, "complete"], row
    # A message on stderr (not an error line) is not wrapped either: a square is no person.
    proc = run_cli("tracks", "--camera", LONG, "--data", data, env=NARROW)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [f"no tracks stored for camera {LONG!r}"]


def test_a_table_of_long_descriptions_is_not_cut(tmp_path):
    models = tmp_path / LONG
    proc = run_cli("models", "list", "--dir", models, env=NARROW)
    assert proc.returncode == 0, proc.stderr
    assert len(lines_with(proc.stdout, f"folder {models})")) == 1, proc.stdout
    registry = load_registry()
    assert registry.models, "the built-in registry lists models"
    for name, entry in registry.models.items():
        (row,) = lines_with(proc.stdout, f"│ {name} ")
        assert entry.description and entry.description in row, row
