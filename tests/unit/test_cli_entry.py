"""The `camsight` entry point: a bug never shows the user a traceback, only a sentence and a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from camsight.cli import main as cli_main
from camsight.errors import ConfigError


def test_an_unforeseen_error_is_one_sentence_with_the_details_in_a_file(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))

    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli_main, "app", broken)
    with pytest.raises(SystemExit) as info:
        cli_main.run()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert "internal error (RuntimeError: boom)" in line
    report = Path(line.rsplit("the details are in ", 1)[1].strip())
    assert report.parent == tmp_path
    assert "Traceback" in report.read_text() and "boom" in report.read_text()


def test_a_user_error_keeps_its_own_sentence(monkeypatch, capsys):
    def wrong() -> None:
        raise ConfigError("site.yaml:3: detector.backnd: unknown key")

    monkeypatch.setattr(cli_main, "app", wrong)
    with pytest.raises(SystemExit) as info:
        cli_main.run()
    assert info.value.code != 0
    assert "error: site.yaml:3: detector.backnd: unknown key" in capsys.readouterr().err
