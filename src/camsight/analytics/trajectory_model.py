"""What normal movement looks like in one camera's view, learned from its own past tracks.

The model answers one question about a finished track: *is its path rare
for this camera?* It knows nothing about people, only about where things of
a kind (people, or vehicles) usually go in this picture and which way they
move there. There is no labelled "abnormal" data; the camera's history is
the only teacher, and the history also sets the alarm threshold.

Method
------

1. **Tokens.** A track's feet points (normalised 0-1 to the frame) are
   smoothed over half a second and resampled *by distance*: one token per
   ``STEP`` of path (a twenty-fifth of the frame), so a slow walker and a
   runner on the same path produce the same tokens. Each token is the grid
   cell it lies in (``GRID`` x ``GRID`` over the frame) and the heading of
   that step quantised to 8 directions. Standing still adds one *still*
   token (a ninth heading) per ``STILL_SECONDS`` without a step, so a long
   stop counts where it happened.
2. **Counts with smoothing.** Per class group the model counts tokens per
   cell (occupancy), per cell and heading, and where tracks start and end.
   Counts are blurred over neighbouring cells (and neighbouring headings)
   so that a sparse history still covers the band people walk in, and each
   distribution gets a Dirichlet prior: a small uniform mass for occupancy,
   entries and exits, and the camera-wide heading mix for each cell's
   headings. Nothing gets probability zero.
3. **Score.** A token's cost is its negative log-likelihood
   ``-log P(cell) - log P(heading | cell)``. A track gets two scores: the
   *overall* score is the mean cost per token (entry and exit cells add a
   half-weight term each), the *local* score is the worst mean over
   ``WINDOW`` consecutive tokens, which catches a short detour that a long
   ordinary path would otherwise average away.
4. **Calibration.** The history is split into folds; each fold is scored
   by a model fitted on the others (cross-fitting), so the calibration
   scores are those of tracks the model has not seen, as a new track will
   be. A track is unusual when either score exceeds the history's
   ``1 - q/2`` quantile of that score, with ``q = 0.002 + 0.05 * sensitivity``:
   at sensitivity 0.5 about 2.7% of tracks like the history's are flagged,
   the rarest ones; at 0, about 0.2%. A history of fewer than about ``2/q``
   tracks cannot resolve that quantile: its limit is close to its own
   rarest track, so a small history only flags what is rarer than anything
   it has seen (and sensitivity matters little until the history grows).
5. **Why.** The rarest stretch of the path is described in words: the part
   of the view it was in, which way it went, and whether it was rare
   because things of its kind are seldom *there*, seldom move *that way*
   there (against or across the usual direction, or back and forth),
   seldom stop there, or seldom appear or leave the view there.

The picture is first-order: the model knows where things go and which way
they move there, not whole routes (two ordinary halves of different paths
joined together look ordinary) and not how sharply paths turn (on real
footage box jitter makes sharp turns too common to be telling).

>>> import numpy as np
>>> t = np.linspace(0, 8, 41)
>>> band = [np.c_[t, np.linspace(0.05, 0.95, 41), np.full(41, 0.5 + 0.01 * (k % 7))] for k in range(60)]
>>> model = TrajectoryModel.fit(band, group="person")
>>> model.judge(band[0], sensitivity=0.5).unusual
False
>>> corner = np.c_[t, np.linspace(0.05, 0.35, 41), np.linspace(0.95, 0.65, 41)]
>>> verdict = model.judge(corner, sensitivity=0.5)
>>> verdict.unusual, verdict.reason
(True, 'moved up-right through the bottom-left part of the view, where people are seldom seen')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from camsight.analytics.rules.base import PastTrack

#: Cells per side of the grid over the normalised frame.
GRID = 12
#: Moving headings (image axes: 0 = right, 2 = down, 4 = left, 6 = up); index 8 is "still".
HEADINGS = 8
STILL = HEADINGS
NBINS = HEADINGS + 1
#: Path length (normalised frame units) per token.
STEP = 0.04
#: One "still" token per this many seconds spent without covering a step.
STILL_SECONDS = 3.0
#: Window (seconds) of the moving average that takes box jitter out of the feet points.
SMOOTH_SECONDS = 0.5
#: Tokens in the stretch the local score looks at.
WINDOW = 6
#: Weight (in tokens) of each of the entry and exit terms in the overall score.
END_WEIGHT = 0.5
#: Dirichlet prior mass (in tokens) spread uniformly over the cells.
OCCUPANCY_PRIOR = 1.0
#: Prior mass (in tracks) spread uniformly over the cells for entries and exits.
END_PRIOR = 1.0
#: Prior mass (in tokens) of the camera-wide heading mix in each cell's heading distribution.
HEADING_PRIOR = 2.0
#: Fewest tokens a track needs to be scored (about an eighth of the frame of path).
MIN_TOKENS = 3
#: Tracks shorter than this (seconds or observations) are never judged: too little to go on.
MIN_SECONDS = 1.0
MIN_OBSERVATIONS = 4

GROUPS: dict[str, tuple[str, ...]] = {
    "person": ("person",),
    "vehicle": ("bicycle", "car", "motorcycle", "bus", "truck"),
}
_NOUNS = {"person": "people", "vehicle": "vehicles"}
_DIRECTIONS = ("right", "down-right", "down", "down-left", "left", "up-left", "up", "up-right")
_ROWS = ("top", "middle", "bottom")
_COLS = ("left", "centre", "right")


def group_of(label: str) -> str:
    """The class group a label is modelled in.

    >>> group_of("person"), group_of("truck")
    ('person', 'vehicle')
    """
    for group, labels in GROUPS.items():
        if label in labels:
            return group
    return label


def quantile_for(sensitivity: float) -> float:
    """Share of ordinary tracks flagged at ``sensitivity`` (0-1): grows with it.

    >>> round(quantile_for(0.0), 3), round(quantile_for(0.5), 3), round(quantile_for(1.0), 3)
    (0.002, 0.027, 0.052)
    """
    s = min(max(float(sensitivity), 0.0), 1.0)
    return 0.002 + 0.05 * s


def judgeable(points: np.ndarray) -> bool:
    """Whether a track is long enough (in time and observations) to be judged at all."""
    return len(points) >= MIN_OBSERVATIONS and float(points[-1, 0] - points[0, 0]) >= MIN_SECONDS


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Tokens:
    """A track's path as tokens, in time order (see the module docstring)."""

    cell: np.ndarray  # int, row * GRID + column
    heading: np.ndarray  # int, 0-7 moving, STILL
    t: np.ndarray
    xy: np.ndarray  # (n, 2) normalised position of each token
    first: tuple[float, float]  # the (smoothed) first and last points
    last: tuple[float, float]
    entry: int  # and their cells
    exit: int

    def __len__(self) -> int:
        return len(self.cell)


def _cells(xy: np.ndarray) -> np.ndarray:
    ij = np.clip(np.floor(xy * GRID), 0, GRID - 1).astype(np.int64)
    return ij[..., 1] * GRID + ij[..., 0]


def _smooth(t: np.ndarray, xy: np.ndarray, window: float) -> np.ndarray:
    """Mean of the points within ``window``/2 seconds of each point (cumulative sums, no loop)."""
    lo = np.searchsorted(t, t - window / 2, side="left")
    hi = np.searchsorted(t, t + window / 2, side="right")
    csum = np.vstack([np.zeros((1, 2)), np.cumsum(xy, axis=0)])
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def tokenize(points: np.ndarray) -> Tokens:
    """Tokens of a path given as (n, 3) rows of t, x, y (normalised).

    >>> path = np.c_[np.linspace(0, 4, 21), np.linspace(0.1, 0.5, 21), np.full(21, 0.5)]
    >>> tok = tokenize(path)
    >>> len(tok) >= 8, set(tok.heading.tolist())
    (True, {0})
    """
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    if len(pts) == 0:
        empty = np.zeros(0, np.int64)
        return Tokens(empty, empty, np.zeros(0), np.zeros((0, 2)), (0.0, 0.0), (0.0, 0.0), 0, 0)
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    t = pts[:, 0]
    xy = _smooth(t, pts[:, 1:], SMOOTH_SECONDS)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    n_steps = int(arc[-1] // STEP)
    # Where (and when) the path first reaches each multiple of STEP along its length.
    ks = np.arange(n_steps + 1) * STEP
    if len(arc) > 1:
        j = np.clip(np.searchsorted(arc, ks, side="left"), 1, len(arc) - 1)
        span = arc[j] - arc[j - 1]
        f = np.clip(np.divide(ks - arc[j - 1], span, out=np.zeros_like(ks), where=span > 0), 0.0, 1.0)
        rs_xy = xy[j - 1] + f[:, None] * (xy[j] - xy[j - 1])
        rs_t = t[j - 1] + f * (t[j] - t[j - 1])
    else:
        rs_xy, rs_t = xy[:1].copy(), t[:1].copy()
    rs_xy[0], rs_t[0] = xy[0], t[0]
    move = np.diff(rs_xy, axis=0)
    mid_xy = (rs_xy[1:] + rs_xy[:-1]) / 2
    mid_t = (rs_t[1:] + rs_t[:-1]) / 2
    angle = np.degrees(np.arctan2(move[:, 1], move[:, 0]))
    heading = np.rint(angle / (360.0 / HEADINGS)).astype(np.int64) % HEADINGS
    # Time spent on a step (or after the last one) beyond STILL_SECONDS is standing still.
    gap_t = np.append(np.diff(rs_t), t[-1] - rs_t[-1])
    gap_xy = np.vstack([mid_xy, xy[-1:]]) if n_steps else xy.mean(axis=0, keepdims=True)
    gap_mid_t = np.append(mid_t, (rs_t[-1] + t[-1]) / 2)
    n_still = np.floor(gap_t / STILL_SECONDS).astype(np.int64)
    all_xy = np.vstack([mid_xy, np.repeat(gap_xy, n_still, axis=0)])
    all_t = np.concatenate([mid_t, np.repeat(gap_mid_t, n_still)])
    all_h = np.concatenate([heading, np.full(int(n_still.sum()), STILL, np.int64)])
    order = np.argsort(all_t, kind="stable")
    all_xy, all_t, all_h = all_xy[order], all_t[order], all_h[order]
    return Tokens(
        cell=_cells(all_xy),
        heading=all_h,
        t=all_t,
        xy=all_xy,
        first=(float(xy[0, 0]), float(xy[0, 1])),
        last=(float(xy[-1, 0]), float(xy[-1, 1])),
        entry=int(_cells(xy[0])),
        exit=int(_cells(xy[-1])),
    )


# --------------------------------------------------------------------------- tables

_KERNEL = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])


def _blur(grid: np.ndarray) -> np.ndarray:
    """3x3 weighted mean of (GRID, GRID, ...) counts; at the border only cells inside the grid count."""
    pad = [(1, 1), (1, 1)] + [(0, 0)] * (grid.ndim - 2)
    g = np.pad(grid.astype(np.float64), pad)
    inside = np.pad(np.ones((GRID, GRID)), 1)
    out = np.zeros(grid.shape, np.float64)
    norm = np.zeros((GRID, GRID))
    for di in range(3):
        for dj in range(3):
            w = _KERNEL[di, dj]
            out += w * g[di : di + GRID, dj : dj + GRID]
            norm += w * inside[di : di + GRID, dj : dj + GRID]
    return out / norm.reshape(norm.shape + (1,) * (grid.ndim - 2))


def _blur_headings(h: np.ndarray) -> np.ndarray:
    """Spread moving-heading counts to the two neighbouring directions (a quarter each)."""
    out = h.astype(np.float64)
    moving = out[..., :HEADINGS].copy()
    out[..., :HEADINGS] = 0.5 * moving + 0.25 * (np.roll(moving, 1, axis=-1) + np.roll(moving, -1, axis=-1))
    return out


@dataclass(frozen=True)
class _Counts:
    """Raw counts of some tracks' tokens: per cell and heading, entry and exit cells."""

    tokens: np.ndarray  # (C, NBINS)
    entries: np.ndarray  # (C,)
    exits: np.ndarray  # (C,)

    @classmethod
    def of(cls, tracks: Sequence[Tokens]) -> _Counts:
        cells = GRID * GRID
        flat = np.concatenate([tk.cell * NBINS + tk.heading for tk in tracks] or [np.zeros(0, np.int64)])
        return cls(
            tokens=np.bincount(flat, minlength=cells * NBINS).reshape(cells, NBINS).astype(np.float64),
            entries=np.bincount([tk.entry for tk in tracks], minlength=cells).astype(np.float64),
            exits=np.bincount([tk.exit for tk in tracks], minlength=cells).astype(np.float64),
        )

    def __sub__(self, other: _Counts) -> _Counts:
        return _Counts(
            self.tokens - other.tokens,
            self.entries - other.entries,
            self.exits - other.exits,
        )


def _dirichlet(counts: np.ndarray, prior_mass: float) -> np.ndarray:
    """Log-probabilities of (counts + a uniform prior of ``prior_mass`` in all)."""
    flat = counts.ravel()
    return np.log((flat + prior_mass / flat.size) / (flat.sum() + prior_mass))


def _entropy(log_p: np.ndarray) -> float:
    """Expected cost (nats) of a draw from the distribution itself: what an ordinary one costs."""
    return float(-(np.exp(log_p) * log_p).sum())


@dataclass(frozen=True)
class _Tables:
    """Log-probabilities learned from counts, and the typical cost of each part."""

    log_occ: np.ndarray  # (C,)
    log_head: np.ndarray  # (C, NBINS)
    log_entry: np.ndarray  # (C,)
    log_exit: np.ndarray  # (C,)
    #: Smoothed heading counts per cell, to say which way is usual somewhere.
    heads: np.ndarray  # (C, NBINS)
    typical: dict[str, float]

    @classmethod
    def of(cls, counts: _Counts) -> _Tables:
        cells = GRID * GRID
        heads = _blur_headings(_blur(counts.tokens.reshape(GRID, GRID, NBINS))).reshape(cells, NBINS)
        occ = heads.sum(axis=1)
        log_occ = _dirichlet(occ, OCCUPANCY_PRIOR)
        # The camera-wide heading mix, Laplace-smoothed so that every heading stays possible.
        mix = _blur_headings(counts.tokens.sum(axis=0)) + 1.0
        mix /= mix.sum()
        log_head = np.log((heads + HEADING_PRIOR * mix) / (occ[:, None] + HEADING_PRIOR))
        log_entry = _dirichlet(_blur(counts.entries.reshape(GRID, GRID)), END_PRIOR)
        log_exit = _dirichlet(_blur(counts.exits.reshape(GRID, GRID)), END_PRIOR)
        p_occ = np.exp(log_occ)
        typical = {
            "place": _entropy(log_occ),
            "direction": float(-(p_occ[:, None] * np.exp(log_head) * log_head).sum()),
            "entry": _entropy(log_entry),
            "exit": _entropy(log_exit),
        }
        return cls(log_occ, log_head, log_entry, log_exit, heads, typical)


# --------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class Score:
    """A track's costs under a model (nats per token) and where its rarest stretch is."""

    overall: float
    local: float
    #: The rarest stretch: its first token and its length.
    window_start: int
    window_len: int
    #: Per-token costs of each part, and the costs of the entry and exit cells.
    parts: dict[str, np.ndarray]
    entry: float
    exit: float


def _score(tables: _Tables, tok: Tokens) -> Score:
    parts = {
        "place": -tables.log_occ[tok.cell],
        "direction": -tables.log_head[tok.cell, tok.heading],
    }
    cost = parts["place"] + parts["direction"]
    entry, exit_ = float(-tables.log_entry[tok.entry]), float(-tables.log_exit[tok.exit])
    n = len(cost)
    overall = (float(cost.sum()) + END_WEIGHT * (entry + exit_)) / (n + 2 * END_WEIGHT)
    w = min(WINDOW, n)
    csum = np.concatenate([[0.0], np.cumsum(cost)])
    means = (csum[w:] - csum[:-w]) / w
    start = int(np.argmax(means))
    return Score(overall, float(means[start]), start, w, parts, entry, exit_)


@dataclass(frozen=True)
class Judgement:
    """The verdict on one track, with what made it rare.

    ``score``/``threshold`` are the overall cost per token and its limit,
    ``local_score``/``local_threshold`` the same for the rarest stretch;
    ``segment`` is that stretch's time span (source seconds) and ``where``
    its centre (normalised frame coordinates).
    """

    unusual: bool
    score: float
    threshold: float
    local_score: float
    local_threshold: float
    reason: str
    segment: tuple[float, float]
    where: tuple[float, float]
    tokens: int

    @property
    def margin(self) -> float:
        """How far (nats per token) the track is past the nearer of its limits; negative when ordinary."""
        return max(self.score - self.threshold, self.local_score - self.local_threshold)

    def details(self) -> dict[str, Any]:
        """JSON-ready details for an event."""
        return {
            "score": round(self.score, 3),
            "threshold": round(self.threshold, 3),
            "local_score": round(self.local_score, 3),
            "local_threshold": round(self.local_threshold, 3),
            "reason": self.reason,
            "segment": [round(self.segment[0], 2), round(self.segment[1], 2)],
            "where": [round(self.where[0], 3), round(self.where[1], 3)],
        }


def _region(x: float, y: float) -> str:
    row = _ROWS[min(max(int(y * 3), 0), 2)]
    col = _COLS[min(max(int(x * 3), 0), 2)]
    if row == "middle" and col == "centre":
        return "the centre of the view"
    if col == "centre":
        return f"the {row} of the view"
    return f"the {row}-{col} part of the view"


def _direction(dx: float, dy: float) -> str:
    return _DIRECTIONS[round(math.degrees(math.atan2(dy, dx)) / 45.0) % HEADINGS]


def _angle_between(a: int, b: int) -> float:
    d = abs(a - b) % HEADINGS
    return 45.0 * min(d, HEADINGS - d)


# --------------------------------------------------------------------------- the model


@dataclass
class TrajectoryModel:
    """Normal movement of one class group in one camera's view (see the module docstring).

    Build it with :meth:`fit`; :meth:`judge` says whether a path is unusual.
    """

    group: str
    tables: _Tables
    #: Cross-fitted overall and local scores of the history's tracks, sorted: the calibration.
    calibration: np.ndarray
    local_calibration: np.ndarray
    #: Past tracks learned from, and those too short or too still to use.
    tracks: int
    skipped: int = 0

    @property
    def noun(self) -> str:
        return _NOUNS.get(self.group, f"{self.group}s")

    @classmethod
    def fit(
        cls, paths: Sequence[np.ndarray], *, group: str = "person", folds: int | None = None
    ) -> TrajectoryModel:
        """Learn from past paths ((n, 3) arrays of t, x, y normalised); short ones are skipped.

        ``folds`` (default 10, or 5 from 200 paths on) sets the cross-fitting
        that calibrates the thresholds. Raises ValueError when fewer than two
        paths can be used.
        """
        tokens = [tk for tk in (tokenize(p) for p in paths if judgeable(p)) if len(tk) >= MIN_TOKENS]
        if len(tokens) < 2:
            raise ValueError(f"need at least 2 usable paths, got {len(tokens)}")
        total = _Counts.of(tokens)
        k = max(2, min(folds or (10 if len(tokens) < 200 else 5), len(tokens)))
        overall = np.empty(len(tokens))
        local = np.empty(len(tokens))
        for fold in range(k):
            # Interleaved folds: each spans the whole history, whatever order it came in.
            members = range(fold, len(tokens), k)
            held = [tokens[i] for i in members]
            tables = _Tables.of(total - _Counts.of(held))
            for i, tk in zip(members, held, strict=True):
                s = _score(tables, tk)
                overall[i], local[i] = s.overall, s.local
        return cls(
            group=group,
            tables=_Tables.of(total),
            calibration=np.sort(overall),
            local_calibration=np.sort(local),
            tracks=len(tokens),
            skipped=len(paths) - len(tokens),
        )

    def thresholds(self, sensitivity: float) -> tuple[float, float]:
        """Limits of the overall and the local score: each flags ``q/2`` of the history's tracks.

        With fewer than about ``2/q`` past tracks the limits are close to the
        history's rarest track: a small history only flags what is rarer than
        anything it has seen.
        """
        level = 1.0 - quantile_for(sensitivity) / 2.0
        return (
            float(np.quantile(self.calibration, level)),
            float(np.quantile(self.local_calibration, level)),
        )

    def score(self, points: np.ndarray) -> Score | None:
        """Costs of a path, or None when it is too short or moved too little to judge."""
        tok = self._tokens(points)
        return None if tok is None else _score(self.tables, tok)

    def judge(self, points: np.ndarray, sensitivity: float = 0.5) -> Judgement | None:
        """Whether the path ((n, 3): t, x, y normalised) is unusual here; None when it cannot be judged."""
        tok = self._tokens(points)
        if tok is None:
            return None
        s = _score(self.tables, tok)
        limit, local_limit = self.thresholds(sensitivity)
        a, b = s.window_start, s.window_start + s.window_len
        where = tok.xy[a:b].mean(axis=0)
        # Explain by the test that is furthest past (or nearest to) its limit.
        local = s.local - local_limit >= s.overall - limit
        return Judgement(
            unusual=s.overall > limit or s.local > local_limit,
            score=s.overall,
            threshold=limit,
            local_score=s.local,
            local_threshold=local_limit,
            reason=self._explain(tok, s, local=local),
            segment=(float(tok.t[a]), float(tok.t[b - 1])),
            where=(float(where[0]), float(where[1])),
            tokens=len(tok),
        )

    def _tokens(self, points: np.ndarray) -> Tokens | None:
        if not judgeable(points):
            return None
        tok = tokenize(points)
        return tok if len(tok) >= MIN_TOKENS else None

    def _explain(self, tok: Tokens, s: Score, *, local: bool) -> str:
        """The main reason the path is rare, in words: the part whose cost is furthest above typical."""
        typical = self.tables.typical
        a, b = s.window_start, s.window_start + s.window_len
        if local:
            # The rarest stretch on its own: which of its parts cost most over the usual.
            excess = {k: float(v[a:b].mean()) - typical[k] for k, v in s.parts.items()}
        else:
            # Contributions to the overall mean, ends included at their weight.
            excess = {k: float((v - typical[k]).sum()) for k, v in s.parts.items()}
            excess["entry"] = END_WEIGHT * (s.entry - typical["entry"])
            excess["exit"] = END_WEIGHT * (s.exit - typical["exit"])
        cause = max(excess, key=lambda key: excess[key])
        noun = self.noun
        if cause == "entry":
            return f"appeared in {_region(*tok.first)}, where {noun} seldom appear"
        if cause == "exit":
            return f"left the view from {_region(*tok.last)}, where {noun} seldom leave it"
        heads, xy = tok.heading[a:b], tok.xy[a:b]
        region = _region(*xy.mean(axis=0))
        moving = heads != STILL
        usual = _DIRECTIONS[int(np.argmax(self.tables.heads[tok.cell[a:b], :HEADINGS].sum(axis=0)))]
        if moving.mean() < 0.5:
            if cause == "direction":
                return f"stood still in {region}, where {noun} usually keep moving {usual}"
            return f"stood still in {region}, where {noun} seldom stop"
        mxy = xy[moving]
        net = mxy[-1] - mxy[0]
        own = int(np.bincount(heads[moving], minlength=HEADINGS).argmax())
        way = _direction(float(net[0]), float(net[1])) if float(np.hypot(*net)) >= STEP else _DIRECTIONS[own]
        if cause == "place":
            return f"moved {way} through {region}, where {noun} are seldom seen"
        angles = np.radians(heads[moving] * (360.0 / HEADINGS))
        if float(np.hypot(np.cos(angles).mean(), np.sin(angles).mean())) < 0.5:
            return f"kept changing direction in {region}, where {noun} usually move {usual}"
        off = _angle_between(own, _DIRECTIONS.index(usual))
        if off >= 135:
            return f"moved {way} against the usual direction in {region} ({noun} there usually move {usual})"
        if off >= 45:
            return f"moved {way} across the usual direction in {region} ({noun} there usually move {usual})"
        return f"moved {way} in {region} in a way {noun} seldom do there"


# --------------------------------------------------------------------------- per camera


@dataclass
class CameraModel:
    """One :class:`TrajectoryModel` per class group that has enough history.

    ``status`` says, per group, what was learned or why the group stays silent.

    >>> CameraModel.fit([], min_history=50, groups=("person",)).status
    'person: silent, 0 usable past tracks of the 50 needed'
    """

    models: dict[str, TrajectoryModel]
    notes: dict[str, str]

    @classmethod
    def fit(
        cls, history: Sequence[PastTrack], *, min_history: int = 50, groups: Sequence[str] = tuple(GROUPS)
    ) -> CameraModel:
        """Fit a model for each of ``groups`` with at least ``min_history`` usable past tracks."""
        by_group: dict[str, list[np.ndarray]] = {g: [] for g in groups}
        for past in history:
            g = group_of(past.label)
            if g in by_group and judgeable(past.points):
                by_group[g].append(past.points)
        models: dict[str, TrajectoryModel] = {}
        notes: dict[str, str] = {}
        for g, paths in by_group.items():
            if len(paths) < min_history:
                notes[g] = f"silent, {len(paths)} usable past tracks of the {min_history} needed"
                continue
            try:
                model = TrajectoryModel.fit(paths, group=g)
            except ValueError:
                model = None
            if model is None or model.tracks < min_history:
                moving = 0 if model is None else model.tracks
                notes[g] = f"silent, {moving} past tracks that move enough of the {min_history} needed"
                continue
            models[g] = model
            notes[g] = f"learned from {model.tracks} past tracks"
        return cls(models, notes)

    @property
    def status(self) -> str:
        return "; ".join(f"{g}: {note}" for g, note in self.notes.items())

    def judge(self, label: str, points: np.ndarray, sensitivity: float = 0.5) -> Judgement | None:
        """The verdict on a path of a ``label`` object, or None (no model for its group, or too short)."""
        model = self.models.get(group_of(label))
        return None if model is None else model.judge(points, sensitivity)
