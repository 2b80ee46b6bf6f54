"""Shared fixtures: where the real footage is, the real CLI, generated clips, the store.

Real footage lives in ``../shared`` next to the repository (override with
``CAMSIGHT_SHARED``); tests that need it skip with a message saying where
it was looked for. Clips for unit tests are generated here with PyAV.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CAMSIGHT_SHARED", REPO_ROOT.parent / "shared")).resolve()
DATA = SHARED / "data"
YOLOX_MODEL = SHARED / "models" / "yolox_nano.onnx"
CAMSIGHT = Path(sys.executable).with_name("camsight")

VTEST = DATA / "pets09" / "vtest.avi"
VTEST_GT = DATA / "pets09" / "gt_dev.txt"
PEOPLE = DATA / "intel" / "one-by-one-person-detection.mp4"
CARS = DATA / "intel" / "car-detection.mp4"
FALL = DATA / "urfall" / "fall-01-cam0.mp4"

#: The CLI options that select the fast YOLOX backend.
YOLOX_ARGS = ("--detector", "yolox", "--model", str(YOLOX_MODEL))

# Settings a developer may have exported; the tests choose their own.
_ISOLATED_ENV = (
    "CAMSIGHT_CONFIG",
    "CAMSIGHT_MODELS",
    "CAMSIGHT_DATA",
    "CAMSIGHT_LOG",
    "CAMSIGHT_DATABASE_URL",
    "COLUMNS",
    "LINES",
)


# --------------------------------------------------------------------------- shared data


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not found: {path} (set CAMSIGHT_SHARED to the shared/ folder)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-footage folder; the test is skipped when it is absent."""
    return _require(DATA)


@pytest.fixture(scope="session")
def car_detection_clip() -> Path:
    """intel/car-detection.mp4: four cars driving under a camera that looks straight down."""
    return _require(DATA / "intel" / "car-detection.mp4")


@pytest.fixture(scope="session")
def yolox_model() -> Path:
    return _require(YOLOX_MODEL)


@pytest.fixture(scope="session")
def vtest(shared_data: Path) -> Path:
    return _require(VTEST)


@pytest.fixture(scope="session")
def people_clip(shared_data: Path) -> Path:
    return _require(PEOPLE)


@pytest.fixture(scope="session")
def cars_clip(shared_data: Path) -> Path:
    return _require(CARS)


@pytest.fixture(scope="session")
def vtest_short(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 15 s of vtest.avi, remuxed without re-encoding (real footage, short)."""
    out = tmp_path_factory.mktemp("clips") / "vtest-15s.avi"
    return remux(vtest, out, seconds=15.0)


def remux(src: Path, out: Path, seconds: float) -> Path:
    """Copy the first ``seconds`` of ``src``'s video stream into ``out`` (no re-encoding)."""
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        ostream = dst.add_stream_from_template(stream)
        limit = seconds / float(stream.time_base)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.pts >= limit:
                break
            packet.stream = ostream
            dst.mux(packet)
    return out


# --------------------------------------------------------------------------- the CLI


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _ISOLATED_ENV}
    env.update(extra)
    return env


def run_cli(
    *args: object, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the installed ``camsight`` command as a user would; never raises on a non-zero exit."""
    return subprocess.run(
        [str(CAMSIGHT), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else cli_env(),
        check=False,
    )


# --------------------------------------------------------------------------- unreadable files


def nobody() -> pwd.struct_passwd:
    """The unprivileged account the tests become when they run as root (as CI does)."""
    return pwd.getpwnam("nobody")


@contextmanager
def traversable_folder() -> Iterator[Path]:
    """A fresh folder that ``nobody`` may enter (pytest's tmp_path is private to the user running tests)."""
    folder = Path(tempfile.mkdtemp(prefix="camsight-test-"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def make_unreadable(path: Path) -> Path:
    """chmod 000 ``path``; with :func:`unprivileged`, no one can then read it, root included."""
    path.chmod(0)
    return path


@contextmanager
def unprivileged() -> Iterator[None]:
    """Within the block, this process's file access is that of ``nobody`` if the tests run as root.

    Root reads a chmod 000 file, so as root a test of an unreadable file would
    test nothing. Only the effective ids change (the real and saved ones stay
    root), which is enough for the kernel's permission checks and lets the
    block restore them.
    """
    if os.geteuid() != 0:
        yield
        return
    ids = nobody()
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(ids.pw_gid)
    os.seteuid(ids.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


def unprivileged_cli(
    *args: object, home: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """:func:`run_cli`, as ``nobody`` when the tests run as root (``home``: a folder it may write)."""
    env = {**(env if env is not None else cli_env()), "HOME": str(home)}
    prefix: list[str] = []
    if os.geteuid() == 0:
        # setpriv (util-linux) rather than a preexec_fn: the fork of a threaded
        # process should run no Python before exec.
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run a command unprivileged as root"
        ids = nobody()
        prefix = [setpriv, f"--reuid={ids.pw_uid}", f"--regid={ids.pw_gid}", "--clear-groups"]
    return subprocess.run(
        [*prefix, str(CAMSIGHT), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def give_to_unprivileged(path: Path) -> Path:
    """Make ``path`` (a folder, recursively) ``nobody``'s when the tests run as root: it may write there."""
    if os.geteuid() == 0:
        ids = nobody()
        for item in [path, *path.rglob("*")]:
            os.chown(item, ids.pw_uid, ids.pw_gid, follow_symlinks=False)
    return path


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def assert_clean_failure(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """A user error: non-zero exit, no traceback, exactly one ``error:`` line naming ``needles``."""
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"expected a failure, got exit 0:\n{output}"
    assert "Traceback" not in output, output
    errors = error_lines(proc)
    assert len(errors) == 1, f"expected one 'error:' line on stderr, got {errors}:\n{proc.stderr}"
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]


# --------------------------------------------------------------------------- the store on disk


def db_query(data_dir: Path, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    """Run a read-only query against ``data_dir/camsight.db`` with plain sqlite3."""
    uri = f"file:{data_dir / 'camsight.db'}?mode=ro"
    con = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ``CAMSIGHT_DATABASE_URL`` must not send every test's store to their server."""
    monkeypatch.delenv("CAMSIGHT_DATABASE_URL", raising=False)


#: The databases a test marked ``both_databases`` runs on; the PostgreSQL half is marked ``postgres``.
DATABASES = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests (or modules) marked ``both_databases`` that use the store run on SQLite and PostgreSQL."""
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize("database", DATABASES, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the PostgreSQL server is marked ``postgres`` (``-m postgres`` runs them all)."""
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown when xdist is off (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (pyproject.toml) that also runs tests sharing one node id.

    schemathesis makes a test per API operation (tests/integration/test_api_schema.py), and on
    pytest 9.2 they all get their function's node id; xdist's scheduler keys its work by node id,
    so it would run the first of them only. Here the scheduler's copy of the ids is made distinct
    (the workers still run and report the real items, found by their index).
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from collections import Counter

    from xdist.scheduler import LoadFileScheduling

    class DistinctIdsLoadFile(LoadFileScheduling):
        def add_node_collection(self, node: Any, collection: Sequence[str]) -> None:
            seen: Counter[str] = Counter()
            distinct = []
            for nodeid in collection:
                seen[nodeid] += 1
                # A suffix after the last "::": the file (the scheduling unit) stays the same.
                distinct.append(nodeid if seen[nodeid] == 1 else f"{nodeid} #{seen[nodeid]}")
            super().add_node_collection(node, distinct)

    return DistinctIdsLoadFile(config, log)


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """``sqlite`` (the default) or ``postgres`` (tests marked ``both_databases`` get both)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def postgres_migrated(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a PostgreSQL database migrated to the newest revision, to copy stores from."""
    from sqlalchemy.engine import make_url

    from camsight.store.db import open_store

    url = postgres_server.new_database()
    open_store(tmp_path_factory.mktemp("pg-migrated"), url=url).close()  # no connection may stay open
    return make_url(url).database


@pytest.fixture
def database_url(database: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The URL ``open_store`` gets: None (the SQLite file) or a fresh PostgreSQL database, already
    migrated (a server-side copy of a migrated one: migrating each took most of a test's time)."""
    if database != "postgres":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    url = server.new_database(template=request.getfixturevalue("postgres_migrated"))
    yield url
    server.drop_database(url)


@pytest.fixture
def store(tmp_path: Path, database_url: str | None) -> Iterator[Any]:
    """An empty, migrated store in ``tmp_path/data`` (on PostgreSQL when ``database`` says), closed after."""
    from camsight.store.db import open_store

    s = open_store(tmp_path / "data", url=database_url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL 18 with pgvector on 127.0.0.1 (tests/postgres.py), one per session."""
    from postgres import Postgres

    # Not under pytest's basetemp: any other pytest session on the machine (a test that runs
    # pytest, a second run) makes /tmp/pytest-of-<user> private again, and the server, running as
    # its own user, would lose its files mid-run and stop.
    root = Path(tempfile.mkdtemp(prefix="camsight-tests-postgres-"))
    try:
        server = Postgres(root / "server").start()
        yield server
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database for this test (dropped after it)."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)


def save_records(store: Any, camera: str, records: list[Any], wallclock_start: Any) -> None:
    """Store ``records`` (TrackRecords) as one complete source of ``camera``, as indexing a file does."""
    from camsight.store import repository as repo

    plan = repo.plan_source(
        store, camera=camera, uri=f"/video/{camera}.mp4", fingerprint=camera, settings_key="k",
        settings={}, width=640, height=480, native_fps=10.0, duration=600.0, wallclock_start=wallclock_start,
    )  # fmt: skip
    repo.save_tracks(store, plan.source_id, plan.camera_id, records, {})
    repo.finish_source(store, plan.source_id, "complete", {}, None)


def store_snapshot(data_dir: Path) -> dict[str, list[tuple]]:
    """Everything a user could see of a store, for before/after comparisons."""
    return {
        "sources": db_query(
            data_dir, "SELECT id, camera_id, uri, fingerprint, status FROM sources ORDER BY id"
        ),
        "tracks": db_query(
            data_dir,
            "SELECT id, source_id, local_id, label, start_t, end_t, num_observations FROM tracks ORDER BY id",
        ),
        "observations": db_query(data_dir, "SELECT count(*), sum(frame) FROM observations"),
        "thumbnails": db_query(data_dir, "SELECT id, track_id, path FROM thumbnails ORDER BY id"),
    }


@pytest.fixture(scope="session")
def snapshot() -> Callable[[Path], dict[str, list[tuple]]]:
    return store_snapshot


@pytest.fixture(scope="session")
def copy_store() -> Callable[[Path, Path], Path]:
    def copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    return copy


# --------------------------------------------------------------------------- generated clips


DrawFn = Callable[[int, np.ndarray], None]


def moving_square(i: int, image: np.ndarray) -> None:
    """A white square moving right 4 px a frame on a grey background."""
    image[:] = 60
    x = 10 + 4 * i
    image[40:80, x : x + 40] = 255


def make_clip(
    path: Path,
    *,
    frames: int = 30,
    fps: int = 10,
    size: tuple[int, int] = (160, 120),
    codec: str = "mpeg4",
    pts: Iterable[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    draw: DrawFn | None = moving_square,
) -> Path:
    """Write a small video with PyAV.

    Without ``pts`` the clip has a constant frame rate ``fps``; with ``pts``
    (in ``time_base`` units) every frame gets exactly that timestamp, which
    makes a variable frame rate clip.
    """
    stamps = list(pts) if pts is not None else [round(i / fps / time_base) for i in range(frames)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        for i, stamp in enumerate(stamps):
            image = np.zeros((size[1], size[0], 3), np.uint8)
            if draw is not None:
                draw(i, image)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = stamp
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def make_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An .mp4 holding one AAC audio stream and no video."""
    rate = 44100
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        samples = 1024
        t = np.arange(int(seconds * rate)) / rate
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, len(wave) - samples, samples):
            frame = av.AudioFrame.from_ndarray(wave[None, i : i + samples], format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def clip_factory() -> Callable[..., Path]:
    return make_clip


@pytest.fixture(scope="session")
def audio_factory() -> Callable[..., Path]:
    return make_audio_only


# --------------------------------------------------------------------------- API users

API_PASSWORD = "correct horse battery"


def add_api_users(store, elsewhere: str = "elsewhere") -> None:
    """One user per role: root (admin), olga (operator), vera (viewer), and otto, an operator
    limited to the camera ``elsewhere`` (created here when missing), all with ``API_PASSWORD``."""
    from camsight.auth import users
    from camsight.auth.audit import Actor
    from camsight.store.repository import get_or_create_camera

    with store.session() as session:
        get_or_create_camera(session, elsewhere)
    with store.session() as session:
        by = Actor.system()
        users.create_user(session, "root", API_PASSWORD, "admin", by=by)
        users.create_user(session, "olga", API_PASSWORD, "operator", by=by)
        users.create_user(session, "vera", API_PASSWORD, "viewer", by=by)
        users.create_user(session, "otto", API_PASSWORD, "operator", by=by, cameras=[elsewhere])


# --------------------------------------------------------------------------- recording


def feed_recorder(
    rec: Any,
    path: Path,
    t0: datetime,
    *,
    until: float | None = None,
    on=None,
    gap: bool = False,
) -> int:
    """Open ``path`` as the recorder's stream and feed its packets, each arriving at ``t0`` + its time.

    ``on(seconds)`` is called before each packet (to report events at a given moment).
    Returns how many packets were fed.
    """
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rec.open(stream, gap=gap)
        for packet in container.demux(stream):
            if packet.dts is None:
                continue
            t = float(packet.pts * stream.time_base)
            if until is not None and t >= until:
                break
            if on is not None:
                on(t)
            rec.packet(packet, t0 + timedelta(seconds=t))
            count += 1
    return count


# --------------------------------------------------------------------------- indexed footage


def index_fall_clip(data: Path, shared_data: Path, yolox_model: Path) -> subprocess.CompletedProcess:
    """``camsight index`` the urfall fall clip into ``data`` with its scenario rules (fast: YOLOX)."""
    proc = run_cli(
        "index",
        shared_data / "urfall" / "fall-01-cam0.mp4",
        "--data",
        data,
        "--config",
        REPO_ROOT / "bench" / "scenarios" / "urfall.yaml",
        "--detector",
        "yolox",
        "--model",
        yolox_model,
        "--recorded-at",
        "2026-11-20T10:00:00",
    )
    assert proc.returncode == 0, proc.stderr
    return proc
