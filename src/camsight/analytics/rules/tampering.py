"""Camera tampering: the view blocked, heavily defocused, the camera moved, or video lost.

The detector learns what the camera normally sees (a *reference*) from the
first seconds of video and compares every analysed frame against it, on a
downscaled luma image (about 160-200 px wide, from the free ``Frame.gray``
plane), split into a grid of cells of about 12x12 small pixels:

- **blocked**: a large share of the picture lost its detail *and* no longer
  looks like the reference (a hand, a cloth, spray paint, a black patch), or
  the whole picture went dark (lights out, lens capped);
- **defocus**: fine detail fell far below the reference across the picture
  while its coarse layout is still there (focus turned, lens smeared or fogged);
- **moved**: the background no longer lines up with the reference: phase
  correlation finds a consistent shift of more than a few % of the frame and
  the shifted picture matches the reference much better than the unshifted
  one (camera knocked or turned), or almost none of the detailed places of
  the picture still match (re-aimed at a different scene);
- **video_lost**: no frame for ``lost_seconds`` (:meth:`TamperingDetector.idle`
  from live workers, or a gap between two frames' timestamps in a file).

While the view is healthy the reference follows the picture slowly
(:data:`ADAPT_SECONDS`), so daylight and weather changes never fire; it never
adapts while a problem is pending or reported. People and vehicles passing
through change only part of the picture for a short time: every check needs
a large share of the view and ``min_seconds`` of persistence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from camsight.analytics.rules.base import EPS, Event, EventChange, FrameContext, Rule, TrackHistory, wall_time

#: Width (px) the picture is reduced to, at most twice this (integer factors keep the resize cheap).
SMALL_WIDTH = 160
#: Grid columns; rows follow the aspect ratio (12 for 4:3, 9 for 16:9).
GRID_COLS = 16
#: Seconds of video the first reference is learned from (a per-cell median over them
#: ignores people walking through); no problem can be reported before it is learned.
LEARN_SECONDS = 4.0
#: The reference follows a healthy view with this time constant: a day's light changes
#: (minutes to hours) are absorbed, a covered lens (seconds) is not.
ADAPT_SECONDS = 60.0
#: The reference is blended in steps of this weight (one second's worth at ADAPT_SECONDS).
ADAPT_STEP = 1.0 / ADAPT_SECONDS
#: A problem ends after the view has been healthy this long (brief flickers of a
#: shaking hand or a falling cloth do not split one episode into several events).
HEAL_SECONDS = 2.0
#: Frames that are no longer a problem but not clearly healthy either (a blurred view
#: with a bus passing, a moved view with a crowd in it) end the problem only after this long.
HEAL_LONG_SECONDS = 20.0
#: Brief healthy-looking frames while a problem is building up do not restart its clock.
PENDING_GAP_SECONDS = 1.0
#: A camera moved to a new view that has stayed put this long is accepted: the event
#: ends and the reference is learned again, so the new view is watched in turn.
REBASE_SECONDS = 300.0
#: Below this mean luma (0-255) the picture is dark; "lights out" when the reference was
#: at least DARK_RATIO times brighter. Video black is 16: a capped lens reads about 16-20.
DARK_LEVEL = 24.0
DARK_RATIO = 2.5
#: Cell standard deviation (grey levels, small image) under which a cell is plain/flat.
#: Compressed sensor noise alone gives 1-2; real surfaces at this scale give 3 and more.
FLAT_STD = 2.5
#: A cell "has detail" in the reference when its std is at least this: below it, edge
#: energy is mostly noise and compression, and comparing it says nothing about focus.
DETAIL_STD = 4.0
#: A detailed cell has lost its detail when its edge energy falls below this share of the reference.
LOST_RATIO = 0.35
#: Cell correlation with the reference below which the cell shows something else.
MISMATCH_NCC = 0.3
#: A plain cell that stays plain is "covered" when its brightness relative to the whole
#: picture changed by this much (a black patch over a white wall; lighting changes scale
#: every cell alike and leave this ratio alone).
PLAIN_CHANGE = 0.35
#: Defocus also needs the coarse layout (cell means) to correlate with the reference at
#: least this much: blur keeps where bright and dark areas are; a cover does not.
LAYOUT_NCC = 0.6
#: At least this share of cells must have detail in the reference to judge focus or
#: alignment by detail (a blank wall or a night sky has none: those checks are skipped).
MIN_DETAIL_SHARE = 0.08
#: A shift is believed when the reference matches the shifted picture at least this well
#: (correlation over the overlap) and this much better than the unshifted picture: a big
#: vehicle or a crowd can make phase correlation peak anywhere, but cannot make the
#: whole background line up at another offset.
SHIFT_MATCH = 0.45
SHIFT_GAIN = 0.15
#: Re-aim (no measurable shift) is only judged when at least this share of cells has
#: detail, and when the gradients match the reference below REAIM_MATCH at zero and at
#: the best offset: a plain scene gives too little to tell a new view from the old one.
REAIM_DETAIL_SHARE = 0.2
REAIM_MATCH = 0.25
#: Factor applied to each threshold while an event is open (hysteresis): a problem
#: hovering at a threshold does not end and restart.
RELEASE = 0.8


def _lerp(lenient: float, strict: float, sensitivity: float) -> float:
    """A threshold for ``sensitivity`` 0-1, from its most lenient (0) to its strictest (1) value."""
    return lenient + (strict - lenient) * sensitivity


@dataclass(frozen=True)
class Thresholds:
    """The decision thresholds for one sensitivity (0-1; 0.5 is the default)."""

    #: Share of the picture covered to call it blocked: 45% at 0.5 (a person passing
    #: close to the lens covers less, and only for a moment; a hand covers far more).
    covered: float
    #: Sharpness (fine detail vs reference) below which the view is defocused: 0.45 at 0.5.
    #: Heavy blur reads 0.1-0.4; healthy views stay above 0.6 even when big vehicles
    #: pass or the exposure jumps.
    sharpness: float
    #: Shift, as a share of the frame width, that counts as moved: 5% at 0.5 (wind sway
    #: and mount vibration stay well below 1%).
    shift: float
    #: Share of detailed cells that must no longer match to call the camera re-aimed
    #: without a measurable shift: 85% at 0.5 (a crowd in front of the camera covers less).
    mismatch: float

    @classmethod
    def for_sensitivity(cls, sensitivity: float) -> Thresholds:
        s = min(max(float(sensitivity), 0.0), 1.0)
        return cls(
            covered=_lerp(0.6, 0.2, s),
            sharpness=_lerp(0.35, 0.65, s),
            shift=_lerp(0.08, 0.02, s),
            mismatch=_lerp(0.98, 0.8, s),
        )


@dataclass
class Features:
    """What the detector keeps of one picture: the small image and per-cell statistics."""

    #: Small luma image, float32.
    small: np.ndarray
    #: Mean luma of the whole picture.
    level: float
    #: Per cell: mean, std, and edge energy (mean gradient magnitude) of the small image,
    #: and edge energy at twice its resolution (the fine detail blur removes first).
    #: Edge energies are divided by the picture's mean luma, so they do not change with
    #: exposure or gain.
    mean: np.ndarray
    std: np.ndarray
    edges: np.ndarray
    fine: np.ndarray
    #: Gradient magnitude of the small image (for checking how well a shifted view lines up).
    grad: np.ndarray


def _grad(image: np.ndarray) -> np.ndarray:
    """|d/dx| + |d/dy| (Sobel): cheap, and enough to compare detail with the reference."""
    return np.abs(cv2.Sobel(image, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(image, cv2.CV_32F, 0, 1))


def _energy(image: np.ndarray) -> np.ndarray:
    """Squared gradient magnitude: blur spreads an edge's gradient over more pixels, which
    leaves the sum of |gradient| across the edge unchanged but divides its square."""
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1)
    return gx * gx + gy * gy


def _cells(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Per-cell means (area resampling of a small image to the grid is exactly a block mean)."""
    return cv2.resize(image, grid, interpolation=cv2.INTER_AREA)


def grid_for(size: tuple[int, int]) -> tuple[int, int]:
    """Grid (columns, rows) for a frame of ``size`` (width, height).

    >>> grid_for((768, 576)), grid_for((768, 432))
    ((16, 12), (16, 9))
    """
    w, h = size
    return GRID_COLS, max(2, round(GRID_COLS * h / w))


def features(gray: np.ndarray) -> Features:
    """Reduce a luma frame to the features compared with the reference.

    The frame is shrunk by an integer factor (area averaging; integer factors
    take OpenCV's fast path, ~0.15 ms for 768x576) to about twice
    :data:`SMALL_WIDTH`, then halved again.
    """
    h, w = gray.shape[:2]
    k = max(1, w // SMALL_WIDTH)
    half = max(1, k // 2)
    if half > 1:
        gray = gray[: h // half * half, : w // half * half]
        mid = cv2.resize(gray, (w // half, h // half), interpolation=cv2.INTER_AREA)
    else:
        mid = gray
    mid = mid.astype(np.float32)
    mh, mw = mid.shape
    if k >= 2:
        mid = mid[: mh // 2 * 2, : mw // 2 * 2]
        small = cv2.resize(mid, (mw // 2, mh // 2), interpolation=cv2.INTER_AREA)
    else:
        small = mid
    grid = grid_for((small.shape[1], small.shape[0]))
    level = float(small.mean())
    norm = 1.0 / max(level, 16.0)
    mean = _cells(small, grid)
    sq = _cells(small * small, grid)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    grad = _grad(small)
    edges = _cells(grad, grid) * norm
    fine = _cells(_energy(mid), grid) * (norm * norm)
    return Features(small, level, mean, std, edges, fine, grad)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Zero-mean normalised correlation of two equally shaped arrays (0 when either is flat)."""
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 1e-6 else 0.0


def _overlap_ncc(ref: np.ndarray, cur: np.ndarray, dx: int, dy: int) -> float:
    """Correlation of ``ref`` with ``cur`` where ``cur`` shows ref's content moved by (dx, dy)."""
    h, w = ref.shape
    if abs(dx) >= w // 2 or abs(dy) >= h // 2:
        return 0.0
    r = ref[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    c = cur[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)]
    return _ncc(r, c)


@dataclass(frozen=True)
class Assessment:
    """How one frame compares with the reference, and what (if anything) is wrong."""

    #: ``blocked``, ``defocus``, ``moved`` or None (healthy).
    kind: str | None
    #: Share of the picture covered (0-1).
    covered: float
    #: Fine detail vs the reference (1 = as sharp as usual); None when the scene has too little detail.
    sharpness: float | None
    #: Share of detailed cells that still match the reference; None when too few have detail.
    aligned: float | None
    #: Whether the picture is dark compared with the reference.
    dark: bool
    #: Correlation of the coarse layout (cell means) with the reference.
    layout: float
    #: Shift of the view as (dx, dy) shares of the frame width and height, when one was measured.
    shift: tuple[float, float] | None = None
    #: Correlation of edges with the reference after undoing the shift.
    shift_match: float | None = None
    #: Healthy but not clearly so (halfway to a threshold): the reference adapts more slowly.
    borderline: bool = False

    def details(self) -> dict[str, Any]:
        """The measurements an event keeps (rounded, JSON-friendly)."""
        out: dict[str, Any] = {"covered": round(self.covered, 3), "layout": round(self.layout, 3)}
        if self.sharpness is not None:
            out["sharpness"] = round(self.sharpness, 3)
        if self.aligned is not None:
            out["aligned"] = round(self.aligned, 3)
        if self.dark:
            out["dark"] = True
        if self.shift is not None:
            out["shift_x"] = round(self.shift[0], 3)
            out["shift_y"] = round(self.shift[1], 3)
        if self.shift_match is not None:
            out["shift_match"] = round(self.shift_match, 3)
        return out

    def summary(self) -> str:
        """A one-line description for people."""
        if self.kind == "blocked":
            if self.dark:
                return "camera view dark: lights out or lens covered"
            return f"camera view blocked: {self.covered:.0%} of the picture covered"
        if self.kind == "defocus":
            return f"camera out of focus: detail at {self.sharpness or 0.0:.0%} of normal"
        if self.kind == "moved":
            if self.shift is not None:
                dx, dy = self.shift
                parts = []
                if abs(dx) >= 0.01:
                    parts.append(f"{abs(dx):.0%} {'right' if dx > 0 else 'left'}")
                if abs(dy) >= 0.01:
                    parts.append(f"{abs(dy):.0%} {'down' if dy > 0 else 'up'}")
                return "camera moved: the view shifted " + " and ".join(parts)
            return "camera moved: the view no longer matches the learned scene"
        return "camera view healthy"


@dataclass
class _Reference:
    """The learned normal view: its features, plus what is derived from them after each change."""

    feats: Features
    window: np.ndarray
    #: The reference image's own per-cell mean and std. The image is a temporal median
    #: (then a slow average), so sensor noise is gone from it: its std is structure.
    img_mean: np.ndarray = field(init=False)
    img_std: np.ndarray = field(init=False)
    tiny: np.ndarray = field(init=False)
    edges: np.ndarray = field(init=False)
    detail: np.ndarray = field(init=False)
    plain: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.refresh()

    def refresh(self) -> None:
        f = self.feats
        grid = (f.mean.shape[1], f.mean.shape[0])
        self.img_mean = _cells(f.small, grid)
        sq = _cells(f.small * f.small, grid)
        self.img_std = np.sqrt(np.maximum(sq - self.img_mean * self.img_mean, 0.0))
        self.tiny = _tiny(f.small) * self.window
        f.grad = _grad(f.small)
        self.edges = cv2.GaussianBlur(f.grad, (0, 0), 1.5)
        self.detail = self.img_std >= DETAIL_STD
        self.plain = f.std < FLAT_STD

    def blend(self, cur: Features, alpha: float) -> None:
        """Move ``alpha`` (0-1) of the way towards ``cur``."""
        f = self.feats
        for name in ("small", "mean", "std", "edges", "fine"):
            ref = getattr(f, name)
            ref += alpha * (getattr(cur, name) - ref)
        f.level += alpha * (cur.level - f.level)
        self.refresh()


def _tiny(small: np.ndarray) -> np.ndarray:
    """The small image halved again, for phase correlation (4x cheaper, shifts of a few % still resolve)."""
    h, w = small.shape
    return cv2.resize(small[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def learn_reference(frames: list[Features]) -> Features:
    """The per-pixel / per-cell median of ``frames`` (people passing through drop out)."""

    def med(name: str) -> np.ndarray:
        return np.median(np.stack([getattr(f, name) for f in frames]), axis=0).astype(np.float32)

    small = med("small")
    return Features(
        small=small,
        level=float(np.median([f.level for f in frames])),
        mean=med("mean"),
        std=med("std"),
        edges=med("edges"),
        fine=med("fine"),
        grad=_grad(small),
    )


def assess(ref: _Reference, cur: Features, th: Thresholds, *, holding: bool = False) -> Assessment:
    """Compare a frame's features with the reference; ``holding`` relaxes thresholds (an open event)."""
    rf = ref.feats
    relax = RELEASE if holding else 1.0
    n_cells = rf.mean.size
    detail = ref.detail
    n_detail = int(detail.sum())
    enough_detail = n_detail >= max(3, MIN_DETAIL_SHARE * n_cells)

    # Per-cell correlation with the reference (block sums of the small images).
    prod = _cells(rf.small * cur.small, (rf.mean.shape[1], rf.mean.shape[0]))
    cov = prod - ref.img_mean * cur.mean
    ncc = cov / (ref.img_std * cur.std + 1.0)
    matches = ncc >= MISMATCH_NCC

    # Covered: detailed cells that lost their detail and show something else (or nothing),
    # and plain cells that stayed plain but changed brightness relative to the picture.
    lost = cur.edges < LOST_RATIO * rf.edges
    flat = cur.std < FLAT_STD
    rel_ref = rf.mean / max(rf.level, 1.0)
    rel_cur = cur.mean / max(cur.level, 1.0)
    changed = np.abs(rel_cur - rel_ref) > PLAIN_CHANGE
    covered_cells = np.where(detail, lost & (~matches | flat), flat & ref.plain & changed)
    # Cells neither plain nor detailed (faint texture) count when they went flat and changed.
    faint = ~detail & ~ref.plain
    covered_cells |= faint & flat & changed
    covered = float(covered_cells.mean())

    dark = cur.level < DARK_LEVEL and rf.level >= DARK_RATIO * cur.level
    layout = _ncc(rf.mean, cur.mean)

    sharpness: float | None = None
    aligned: float | None = None
    if enough_detail:
        # The most detailed cells now vs the most detailed cells of the reference (as many as
        # the reference has detailed cells): unlike a cell-by-cell ratio this does not drop
        # when the view shifts, and a vehicle adding detail somewhere only raises it.
        top_cur = np.partition(cur.fine.ravel(), -n_detail)[-n_detail:]
        top_ref = np.partition(rf.fine.ravel(), -n_detail)[-n_detail:]
        # Square root: the ratio of gradient amplitudes, which reads more naturally.
        sharpness = math.sqrt(float(top_cur.mean()) / max(float(top_ref.mean()), 1e-8))
        aligned = float(matches[detail].mean())

    def result(kind: str | None, **extra: Any) -> Assessment:
        return Assessment(kind, covered, sharpness, aligned, dark, layout, **extra)

    if dark:
        return result("blocked")

    # Moved by a measurable shift: checked before coverage because a shifted view
    # also loses detail in many cells (its content sits elsewhere). The match is
    # judged on gradients: edges line up only at the true offset, while the
    # brightness layout (a bright wall, a dark floor) correlates at many.
    tiny = _tiny(cur.small)
    (dx, dy), _ = cv2.phaseCorrelate(ref.tiny, tiny * ref.window)
    h, w = tiny.shape
    sx, sy = dx / w, dy / h
    offset = math.hypot(sx, sy * h / w)
    at_zero = at_shift = None
    if offset >= th.shift * relax * 0.5 or (aligned is not None and 1.0 - aligned >= th.mismatch * relax):
        # Edges smoothed a little, so that a shift measured 1-2 px off still lines them up.
        cur_edges = cv2.GaussianBlur(cur.grad, (0, 0), 1.5)
        at_zero = _ncc(ref.edges, cur_edges)
        at_shift = _overlap_ncc(ref.edges, cur_edges, round(2 * dx), round(2 * dy))
    shifted = at_shift is not None and at_zero is not None and at_shift >= SHIFT_MATCH and (
        at_shift >= at_zero + SHIFT_GAIN
    )
    if shifted and offset >= th.shift * relax:
        return result("moved", shift=(sx, sy), shift_match=at_shift)

    blurred = sharpness is not None and sharpness < th.sharpness / relax
    # Heavy blur also flattens fine texture (grass, gravel) until it looks covered; it keeps
    # the coarse layout, which a cover does not. Blur alone (little covered) needs no layout
    # check: a big vehicle passing a blurred view changes the layout but not the blur.
    if covered >= th.covered * relax and not (blurred and layout >= LAYOUT_NCC and covered < 0.9):
        return result("blocked")
    if blurred:
        return result("defocus")
    # Re-aimed: almost no detailed place matches and no offset lines the view up
    # again (a small shift also breaks cell matches along thin lines; that is not this).
    if (
        aligned is not None
        and ref.detail.mean() >= REAIM_DETAIL_SHARE
        and 1.0 - aligned >= th.mismatch * relax
        and not shifted
        and max(at_zero or 0.0, at_shift or 0.0) < REAIM_MATCH
    ):
        return result("moved", shift_match=max(at_zero or 0.0, at_shift or 0.0))
    borderline = (
        covered >= th.covered / 2
        or (sharpness is not None and sharpness < (1.0 + th.sharpness) / 2)
        or offset >= th.shift / 2
        or (aligned is not None and 1.0 - aligned >= th.mismatch / 2)
    )
    return result(None, borderline=borderline)


class TamperingDetector(Rule):
    """One ``tampering`` event per episode of the view being blocked, defocused or moved,
    and one per loss of video.

    Feed it every analysed frame (also those where nothing moves: it looks at
    the whole picture, not at tracks). A problem must last ``min_seconds``
    (the event starts when it began) and ends once the view has been healthy
    for :data:`HEAL_SECONDS`. ``details["kind"]`` says which problem was seen
    first; ``details["kinds"]`` lists every kind seen during the episode.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.thresholds = Thresholds.for_sensitivity(self.config.sensitivity)
        self._learning: list[Features] = []
        self._learn_start: float | None = None
        self._ref: _Reference | None = None
        self._shape: tuple[int, int] | None = None
        self._last_t: float | None = None
        self._last_ctx: FrameContext | None = None
        # The view problem being confirmed or reported.
        self._pending_since: float | None = None
        self._last_problem = float("-inf")
        self._ok_since: float | None = None
        self._clear_since: float | None = None
        self._kind: str | None = None
        self._kind_since = 0.0
        self._event: Event | None = None
        self._lost: Event | None = None
        self._adapt_weight = 0.0
        #: The latest frame's assessment (None until the reference is learned), for tools and tests.
        self.last: Assessment | None = None

    # -- the engine's hooks ------------------------------------------------------------------

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        """Assess one frame; report problems that lasted ``min_seconds`` and their end."""
        changes: list[EventChange] = []
        t = ctx.t
        # Frame interval, for adapting; a long gap counts as one ordinary interval.
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), 1.0)
        if self._last_t is not None and t - self._last_t >= self.config.lost_seconds - EPS:
            changes += self._gap(ctx, self._last_t)
        elif self._lost is not None:
            changes.append(self._end_lost(t, ctx.at))
        self._last_t = t
        self._last_ctx = ctx

        cur = features(ctx.frame.gray)
        if self._ref is None or self._shape != cur.small.shape:
            self._learn(cur, t)
            return changes
        ref = self._ref
        a = assess(ref, cur, self.thresholds, holding=self._event is not None)
        self.last = a
        changes += self._track(ctx, a)
        if a.kind is None and self._event is None and self._pending_since is None:
            # A borderline frame (a big vehicle, an exposure jump) is most likely passing:
            # it is learned four times more slowly than a clearly normal one. The weight
            # is saved up and applied about once a second: a one-minute average does
            # not need every frame, and blending costs as much as assessing.
            self._adapt_weight += dt / (ADAPT_SECONDS * (4.0 if a.borderline else 1.0))
            if self._adapt_weight >= ADAPT_STEP:
                ref.blend(cur, min(0.5, self._adapt_weight))
                self._adapt_weight = 0.0
        else:
            self._adapt_weight = 0.0
        return changes

    def idle(self, t: float, at: datetime | None) -> list[EventChange]:
        """No frame since the last one: report video lost once that lasts ``lost_seconds``."""
        last, ctx = self._last_t, self._last_ctx
        if last is None or ctx is None or self._lost is not None:
            return []
        if t - last < self.config.lost_seconds - EPS or self.cooling("video_lost", last):
            return []
        self._lost = self._lost_event(replace(ctx, t=t, at=at), last, t)
        return [EventChange("start", self._lost)]

    def finish(self, t: float, at: datetime | None) -> list[EventChange]:
        """The source ended: close what is open."""
        changes: list[EventChange] = []
        if self._lost is not None:
            changes.append(self._end_lost(t, at))
        if self._event is not None:
            end = self._ok_since if self._ok_since is not None else t
            changes.append(self._close(end, wall_time(at, t, end)))
        return changes

    # -- video loss -----------------------------------------------------------------------------

    def _lost_event(self, ctx: FrameContext, since: float, now: float) -> Event:
        gap = now - since
        return self.new_event(
            ctx,
            "video_lost",
            f"video lost: no frames for {gap:.0f} s",
            start_t=since,
            details={"kind": "video_lost", "kinds": ["video_lost"], "seconds": round(gap, 3),
                     "fired_t": round(now, 3)},
        )

    def _gap(self, ctx: FrameContext, last: float) -> list[EventChange]:
        """Frames resumed after a gap of at least ``lost_seconds``."""
        changes: list[EventChange] = []
        if self._lost is None and not self.cooling("video_lost", last):
            self._lost = self._lost_event(ctx, last, ctx.t)
            changes.append(EventChange("start", self._lost))
        if self._lost is not None:
            changes.append(self._end_lost(ctx.t, ctx.at))
        # A problem that was building up before the gap cannot be said to have lasted through it.
        self._pending_since = None
        return changes

    def _end_lost(self, t: float, at: datetime | None) -> EventChange:
        event, self._lost = self._lost, None
        assert event is not None
        event.details["seconds"] = round(t - event.start_t, 3)
        event.summary = f"video lost: no frames for {t - event.start_t:.0f} s"
        return self.end_event(event, "video_lost", t, at)

    # -- view problems ----------------------------------------------------------------------------

    def _learn(self, cur: Features, t: float) -> None:
        if self._shape != cur.small.shape:
            self._learning, self._learn_start, self._ref = [], None, None
            self._shape = cur.small.shape
        if self._learn_start is None:
            self._learn_start = t
        self._learning.append(cur)
        if t - self._learn_start + EPS >= LEARN_SECONDS and len(self._learning) >= 3:
            h, w = cur.small.shape
            window = cv2.createHanningWindow((w // 2, h // 2), cv2.CV_32F)
            self._ref = _Reference(learn_reference(self._learning), window)
            self._learning = []

    def _track(self, ctx: FrameContext, a: Assessment) -> list[EventChange]:
        t = ctx.t
        if a.kind is not None:
            if a.kind != self._kind:
                self._kind, self._kind_since = a.kind, t
            if self._pending_since is None or t - self._last_problem > PENDING_GAP_SECONDS + EPS:
                self._pending_since = t
            self._last_problem = t
            self._ok_since = self._clear_since = None
        else:
            if self._ok_since is None:
                self._ok_since = t
            if a.borderline:
                self._clear_since = None
            elif self._clear_since is None:
                self._clear_since = t
            if self._pending_since is not None and t - self._last_problem > PENDING_GAP_SECONDS + EPS:
                self._pending_since = None

        event = self._event
        if event is not None:
            if a.kind is None:
                # Healed: clearly healthy for HEAL_SECONDS, or at least not a problem for much longer.
                healed = (self._clear_since is not None and t - self._clear_since + EPS >= HEAL_SECONDS) or (
                    t - self._last_problem + EPS >= HEAL_LONG_SECONDS
                )
                if healed or not self.active(ctx):
                    end = self._ok_since if self._ok_since is not None else t
                    return [self._close(end, wall_time(ctx.at, t, end))]
                return []
            if not self.active(ctx):
                return [self._close(t, ctx.at)]
            kinds: list[str] = event.details["kinds"]
            # Another kind joins the episode once it has lasted as long as a new problem must.
            if a.kind not in kinds and t - self._kind_since + EPS >= self.config.min_seconds:
                kinds.append(a.kind)
                event.details.update(a.details())
                event.summary = a.summary()
                return [EventChange("update", event)]
            if a.kind == "moved" and t - event.start_t >= REBASE_SECONDS:
                return self._rebase(ctx)
            return []

        if a.kind is None or self._pending_since is None or not self.active(ctx):
            return []
        if t - self._pending_since + EPS < self.config.min_seconds or self.cooling("view", t):
            return []
        details = {"kind": a.kind, "kinds": [a.kind], **a.details(), "fired_t": round(t, 3)}
        self._event = self.new_event(ctx, "view", a.summary(), start_t=self._pending_since, details=details)
        return [EventChange("start", self._event)]

    def _close(self, t: float, at: datetime | None) -> EventChange:
        event, self._event = self._event, None
        assert event is not None
        self._pending_since = self._ok_since = self._clear_since = None
        return self.end_event(event, "view", t, at)

    def _rebase(self, ctx: FrameContext) -> list[EventChange]:
        """Accept a camera's new view after :data:`REBASE_SECONDS`: end the event, learn again."""
        assert self._event is not None
        self._event.details["accepted_new_view"] = True
        change = self._close(ctx.t, ctx.at)
        self._ref, self._learning, self._learn_start = None, [], None
        return [change]
