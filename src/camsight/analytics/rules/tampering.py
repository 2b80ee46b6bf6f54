"""Camera tampering: the view blocked, heavily defocused, the camera moved, or video lost.

The detector learns what the camera normally sees (the *reference*) from the
first :data:`LEARN_SECONDS` of video and compares every analysed frame with
it. It works on the free luma plane (``Frame.gray``), shrunk to about 160-200
px wide (the *small* image; focus is judged at twice that resolution) and
split into a grid of 16 columns of cells:

- **blocked**: a large share of the cells lost their detail *and* no longer
  look like the reference (a hand, a cloth, spray paint, a black patch), or
  the whole picture went dark (lights out, lens capped);
- **defocus**: the finest detail fell far below the reference (focus turned,
  lens smeared or fogged), judged on the most detailed cells;
- **moved**: phase correlation finds the background shifted by more than a
  few % of the frame, and the reference's edges line up with the shifted
  picture far better than with the unshifted one (camera knocked or turned);
  or almost no detailed cell matches any more and no shift explains it
  (re-aimed at another scene);
- **video_lost**: no frame for ``lost_seconds`` (:meth:`TamperingDetector.idle`,
  called by live workers, or a jump of the frames' timestamps).

While the view is healthy the reference follows it slowly
(:data:`ADAPT_SECONDS`), so daylight and weather never fire; it never adapts
while a problem is building up or reported. People and vehicles passing
change only part of the picture for a while: every check needs a large share
of the view, and a problem must last ``min_seconds``.

Cost: 0.5-0.9 ms per 768x576 frame on one core (1-2.5 times what decoding one frame
costs; the rule sees 5 of every 10-12.5 decoded frames), see ``bench/tampering_eval.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from camsight.analytics.rules.base import EPS, Event, EventChange, FrameContext, Rule, TrackHistory, wall_time

#: The small image is this wide or up to twice as wide: shrinking by integer factors
#: keeps OpenCV's fast area-averaging path (a 768 px frame gives 192 px).
SMALL_WIDTH = 160
#: Grid columns; rows follow the aspect ratio (12 for 4:3, 9 for 16:9). A cell of a
#: 192 px image is 12 px, 48 px of a 768 px frame: a person far away fits in one.
GRID_COLS = 16
#: The first reference is the per-pixel median of this many seconds of frames, which
#: drops people walking through; no problem can be reported before it is learned.
LEARN_SECONDS = 4.0
#: A healthy view is learned with this time constant: a day's light (minutes to hours)
#: is followed, a covered lens (seconds) is not.
ADAPT_SECONDS = 60.0
#: The reference is blended in steps of this weight (a second's worth), not every frame:
#: a one-minute average does not need every frame, and blending costs as much as a check.
ADAPT_STEP = 1.0 / ADAPT_SECONDS
#: A problem ends after the view has been clearly healthy this long, so the flicker of
#: a shaking hand or a falling cloth does not split one episode into several events.
HEAL_SECONDS = 2.0
#: Frames that are no longer a problem but not clearly healthy either (a blurred view
#: with a bus in it, a moved view with a crowd in it) end the problem only after this long.
HEAL_LONG_SECONDS = 20.0
#: Healthy-looking frames shorter than this while a problem builds up do not restart its clock.
PENDING_GAP_SECONDS = 1.0
#: A camera moved to a new view that stays this long is accepted: the event ends and the
#: reference is learned again, so the new view is watched in turn.
REBASE_SECONDS = 300.0
#: Mean luma (0-255) below which the picture is dark; "lights out" when the reference was
#: at least DARK_RATIO times brighter. Video black is 16: a capped lens reads 16-20.
DARK_LEVEL = 24.0
DARK_RATIO = 2.5
#: Cell standard deviation (grey levels of the small image) below which a cell is plain.
#: Compressed sensor noise alone gives 1-2; a black patch or a cloth close to the lens under 1.
FLAT_STD = 2.5
#: A reference cell has detail when the std of the (median, so noise-free) reference image
#: is at least this: below it a cell holds noise and compression, which says nothing about
#: focus or alignment.
DETAIL_STD = 4.0
#: A detailed cell has lost its detail when its edge energy falls below this share of the
#: reference's (a cover leaves under 10%; a person walking in front keeps edges of their own).
LOST_RATIO = 0.35
#: Cell correlation with the reference below which the cell shows something else.
MISMATCH_NCC = 0.3
#: A plain cell counts as covered when it is still plain but its brightness relative to the
#: whole picture changed this much (a black patch over a white wall). Light changes scale
#: every cell alike and leave these ratios alone.
PLAIN_CHANGE = 0.35
#: Heavy blur flattens fine texture (grass, gravel) until it can look covered; what tells
#: it from a cover is the coarse layout (cell means), which blur keeps above this correlation.
LAYOUT_NCC = 0.6
#: Share of cells with detail needed to judge focus and alignment (a blank wall or a night
#: sky has none: those checks are skipped rather than guessed).
MIN_DETAIL_SHARE = 0.08
#: A measured shift is believed when the reference's edges correlate with the shifted picture
#: at least this much and this much better than with the unshifted one. A big vehicle or a
#: crowd makes phase correlation peak anywhere but cannot line the background up elsewhere.
SHIFT_MATCH = 0.45
SHIFT_GAIN = 0.15
#: Edges are smoothed this much (small-image pixels) before that check, so that a shift
#: measured 1-2 px off (a person in front biases phase correlation) still lines them up.
EDGE_SIGMA = 1.5
#: Re-aim without a measurable shift is judged only when at least this share of cells has
#: detail (a plain scene gives too little to tell a new view from the old one), and needs
#: fewer than this share of the detailed cells to still match. Unrelated views still match
#: 10-25% of cells by chance; a healthy view keeps over 80% unless it is crowded or drifting.
REAIM_DETAIL_SHARE = 0.2
REAIM_ALIGNED = 0.5
#: Thresholds are eased by this factor while an event is open (hysteresis), so a problem
#: hovering at a threshold does not end and start again.
RELEASE = 0.8


def _lerp(lenient: float, strict: float, sensitivity: float) -> float:
    return lenient + (strict - lenient) * sensitivity


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds for a sensitivity from 0 (lenient) to 1 (strict); 0.5 is the default.

    The defaults were set on the footage in ``../shared/data`` (``bench/tampering_eval.py``
    scores the same clips, so it checks them rather than testing them independently):
    healthy views, with people, cars, exposure jumps and a slowly drifting drone camera,
    stay at covered <= 0.1, sharpness >= 0.75, shift <= 2.5% and match >= 0.3; a 60% black
    patch reads covered 0.47-0.74, a Gaussian blur of 1% of the width sharpness 0.1-0.45,
    another scene match 0.0-0.15.

    >>> Thresholds.for_sensitivity(0.5)
    Thresholds(covered=0.4, sharpness=0.5, shift=0.05, match=0.2)
    """

    #: Share of the picture covered that makes it blocked (0.6 -> 0.2).
    covered: float
    #: Sharpness (fine detail vs the reference) under which the view is out of focus (0.35 -> 0.65).
    sharpness: float
    #: Shift, as a share of the frame width, that makes the camera moved (8% -> 2%); wind sway
    #: and mount vibration stay well under 1%.
    shift: float
    #: Correlation of the picture's edges with the reference's (unshifted, and at the best
    #: offset) under which the camera was re-aimed at another scene (0.1 -> 0.3).
    match: float

    @classmethod
    def for_sensitivity(cls, sensitivity: float) -> Thresholds:
        s = min(max(float(sensitivity), 0.0), 1.0)
        return cls(
            covered=round(_lerp(0.6, 0.2, s), 4),
            sharpness=round(_lerp(0.35, 0.65, s), 4),
            shift=round(_lerp(0.08, 0.02, s), 4),
            match=round(_lerp(0.1, 0.3, s), 4),
        )


@dataclass
class Features:
    """What the detector keeps of one picture."""

    #: The small luma image, float32.
    small: np.ndarray
    #: Mean luma of the picture.
    level: float
    #: Per cell: mean and std of the small image.
    mean: np.ndarray
    std: np.ndarray
    #: Per cell: mean gradient magnitude of the small image, divided by ``level`` (so that
    #: exposure and gain changes leave it alone).
    edges: np.ndarray
    #: Per cell: mean squared gradient at twice the small resolution, divided by ``level``².
    #: Blur spreads an edge over more pixels: the sum of its gradient stays the same, but the
    #: sum of the gradient's square falls with the blur's width, so this drops even on the
    #: strong isolated edges (a table, a kerb) that dominate many scenes.
    fine: np.ndarray
    #: Gradient magnitude image of the small image (to check how a shifted view lines up).
    grad: np.ndarray


class Scratch:
    """Work arrays kept from frame to frame.

    Allocating frame-sized arrays anew costs page faults every time (the allocator hands
    large freed blocks back to the system): without this, allocation took longer than all
    the arithmetic (1.1 ms instead of 0.1 ms for the fine-detail step on a 768x576 frame).
    """

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        """The array kept under ``name``, (re)made when the shape or type changed; contents undefined."""
        a = self._arrays.get(name)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[name] = np.empty(shape, dtype)
        return a


def _grad(image: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
    """|d/dx| + |d/dy| (Sobel), as a new array."""
    s = scratch or Scratch()
    gx, gy = s.get("gx", image.shape), s.get("gy", image.shape)
    cv2.Sobel(image, cv2.CV_32F, 1, 0, dst=gx)
    cv2.Sobel(image, cv2.CV_32F, 0, 1, dst=gy)
    return cv2.add(np.abs(gx, out=gx), np.abs(gy, out=gy))


def _cells(image: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Per-cell means (area resampling to the grid)."""
    return cv2.resize(image, grid, interpolation=cv2.INTER_AREA)


def _halve(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    return cv2.resize(image[: h // 2 * 2, : w // 2 * 2], (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def grid_for(size: tuple[int, int]) -> tuple[int, int]:
    """Grid (columns, rows) for an image of ``size`` (width, height).

    >>> grid_for((192, 144)), grid_for((192, 108))
    ((16, 12), (16, 9))
    """
    w, h = size
    return GRID_COLS, max(2, round(GRID_COLS * h / w))


def features(gray: np.ndarray, scratch: Scratch | None = None) -> Features:
    """Reduce a luma frame (uint8, H x W) to the features compared with the reference.

    ``scratch`` keeps work arrays between calls (see :class:`Scratch`).
    """
    s = scratch or Scratch()
    h, w = gray.shape[:2]
    k = max(1, w // SMALL_WIDTH)
    half = max(1, k // 2)
    mid = gray  # twice the small resolution, where focus is judged
    if half > 1:
        size = (w // half, h // half)
        mid = s.get("mid", size[::-1], np.uint8)
        cv2.resize(gray[: h // half * half, : w // half * half], size, dst=mid, interpolation=cv2.INTER_AREA)
    small = (_halve(mid) if k >= 2 else mid).astype(np.float32)
    grid = grid_for((small.shape[1], small.shape[0]))
    mean = _cells(small, grid)
    sq = cv2.multiply(small, small, dst=s.get("sq", small.shape))
    std = np.sqrt(np.maximum(_cells(sq, grid) - mean * mean, 0.0))
    level = float(mean.mean())
    norm = 1.0 / max(level, 16.0)
    grad = _grad(small, s)
    # Squared Sobel gradient of the uint8 image (int16 gradients: half the memory traffic).
    gx = cv2.Sobel(mid, cv2.CV_16S, 1, 0, dst=s.get("mid_gx", mid.shape, np.int16))
    gy = cv2.Sobel(mid, cv2.CV_16S, 0, 1, dst=s.get("mid_gy", mid.shape, np.int16))
    energy = cv2.multiply(gx, gx, dst=s.get("energy", mid.shape), dtype=cv2.CV_32F)
    energy_y = cv2.multiply(gy, gy, dst=s.get("energy_y", mid.shape), dtype=cv2.CV_32F)
    cv2.add(energy, energy_y, dst=energy)
    return Features(
        small=small,
        level=level,
        mean=mean,
        std=std,
        edges=_cells(grad, grid) * norm,
        fine=_cells(energy, grid) * (norm * norm),
        grad=grad,
    )


def learn_reference(frames: list[Features]) -> Features:
    """The per-pixel and per-cell median of ``frames``: people passing through drop out."""

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


@dataclass
class _Reference:
    """The learned view, and what is derived from it each time it changes."""

    feats: Features
    #: Hann window for phase correlation (of the small image halved again).
    window: np.ndarray
    #: The reference image's own cell means and stds (noise-free: the image is a median,
    #: then a slow average), for cell correlations and for telling detail from noise.
    img_mean: np.ndarray = field(init=False)
    img_std: np.ndarray = field(init=False)
    tiny: np.ndarray = field(init=False)
    edges: np.ndarray = field(init=False)
    detail: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.refresh()

    @property
    def grid(self) -> tuple[int, int]:
        return (self.feats.mean.shape[1], self.feats.mean.shape[0])

    def refresh(self) -> None:
        f = self.feats
        grid = self.grid
        self.img_mean = _cells(f.small, grid)
        self.img_std = np.sqrt(np.maximum(_cells(f.small * f.small, grid) - self.img_mean**2, 0.0))
        self.tiny = _halve(f.small) * self.window
        f.grad = _grad(f.small)
        self.edges = cv2.GaussianBlur(f.grad, (0, 0), EDGE_SIGMA)
        self.detail = self.img_std >= DETAIL_STD

    def blend(self, cur: Features, alpha: float) -> None:
        """Move ``alpha`` (0-1) of the way towards ``cur``."""
        f = self.feats
        for name in ("small", "mean", "std", "edges", "fine"):
            cv2.accumulateWeighted(getattr(cur, name), getattr(f, name), alpha)
        f.level += alpha * (cur.level - f.level)
        self.refresh()


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
    """How one frame compares with the reference, and what (if anything) is wrong with it."""

    #: ``blocked``, ``defocus``, ``moved``, or None when the view is healthy.
    kind: str | None
    #: Share of the picture covered (0-1).
    covered: float
    #: Fine detail vs the reference (1: as sharp as usual); None when the scene has too little detail.
    sharpness: float | None
    #: Share of detailed cells that still match the reference; None when too few cells have detail.
    aligned: float | None
    #: Whether the picture is dark compared with the reference.
    dark: bool
    #: Correlation of the coarse layout (cell means) with the reference.
    layout: float
    #: The picture's shift as (dx, dy) shares of the frame width and height (positive: its
    #: content moved right / down), when the camera moved by a measurable shift.
    shift: tuple[float, float] | None = None
    #: Correlation of the reference's edges with the picture's, at the best offset found.
    match: float | None = None
    #: Healthy, but more than halfway to a threshold: the reference adapts more slowly and an
    #: open event does not count it as healed.
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
            out["shift_x"], out["shift_y"] = round(self.shift[0], 3), round(self.shift[1], 3)
        if self.match is not None:
            out["match"] = round(self.match, 3)
        return out

    def summary(self) -> str:
        """One line for people."""
        if self.kind == "blocked":
            if self.dark:
                return "camera view dark: lights out or lens covered"
            return f"camera view blocked: {self.covered:.0%} of the picture covered"
        if self.kind == "defocus":
            return f"camera out of focus: detail at {self.sharpness or 0.0:.0%} of normal"
        if self.kind == "moved":
            if self.shift is None:
                return "camera moved: the view no longer matches the learned scene"
            dx, dy = self.shift
            parts = []
            if abs(dx) >= 0.005:
                parts.append(f"{abs(dx):.0%} {'right' if dx > 0 else 'left'}")
            if abs(dy) >= 0.005:
                parts.append(f"{abs(dy):.0%} {'down' if dy > 0 else 'up'}")
            return "camera moved: the picture shifted " + " and ".join(parts)
        return "camera view normal"


def assess(
    ref: _Reference, cur: Features, th: Thresholds, *, holding: bool = False, scratch: Scratch | None = None
) -> Assessment:
    """Compare one frame's features with the reference.

    ``holding`` (an event is open) eases the thresholds by :data:`RELEASE`.
    """
    s = scratch or Scratch()
    rf = ref.feats
    relax = RELEASE if holding else 1.0
    detail = ref.detail
    n_detail = int(detail.sum())

    # Each cell's correlation with the reference, from block means of the small images.
    prod = _cells(cv2.multiply(rf.small, cur.small, dst=s.get("prod", cur.small.shape)), ref.grid)
    # +1 keeps plain cells (std near 0) from dividing noise by noise.
    ncc = (prod - ref.img_mean * cur.mean) / (ref.img_std * cur.std + 1.0)
    matches = ncc >= MISMATCH_NCC

    # Covered: detailed cells that lost their detail and show something else (or nothing);
    # other cells that are plain now and changed brightness relative to the picture.
    lost = cur.edges < LOST_RATIO * rf.edges
    flat = cur.std < FLAT_STD
    changed = np.abs(cur.mean / max(cur.level, 1.0) - rf.mean / max(rf.level, 1.0)) > PLAIN_CHANGE
    covered_cells = np.where(detail, lost & (~matches | flat), flat & changed)
    covered = float(covered_cells.mean())

    dark = cur.level < DARK_LEVEL and rf.level >= DARK_RATIO * cur.level
    layout = _ncc(rf.mean, cur.mean)

    sharpness: float | None = None
    aligned: float | None = None
    if n_detail >= max(3, MIN_DETAIL_SHARE * detail.size):
        # The most detailed cells now against the most detailed cells of the reference (as
        # many as it has detailed cells): unlike cell-by-cell ratios this does not drop when
        # the view shifts, and a vehicle bringing detail of its own only raises it.
        top_cur = np.partition(cur.fine.ravel(), -n_detail)[-n_detail:]
        top_ref = np.partition(rf.fine.ravel(), -n_detail)[-n_detail:]
        # The square root makes it a ratio of gradient amplitudes, which reads more naturally.
        sharpness = math.sqrt(float(top_cur.mean()) / max(float(top_ref.mean()), 1e-12))
        aligned = float(matches[detail].mean())

    def result(kind: str | None, **extra: Any) -> Assessment:
        return Assessment(kind, covered, sharpness, aligned, dark, layout, **extra)

    if dark:
        return result("blocked")

    # A shift first: a shifted view also loses detail in many cells (its content sits
    # elsewhere), which must not read as a cover. Phase correlation runs on the small image
    # halved again (4x cheaper; a 2% shift is still 2 px there).
    tiny = _halve(cur.small)
    (dx, dy), _ = cv2.phaseCorrelate(ref.tiny, tiny * ref.window)
    h, w = tiny.shape
    sx, sy = dx / w, dy / h
    offset = math.hypot(sx, sy * h / w)
    mismatched = aligned is not None and aligned < REAIM_ALIGNED
    at_zero = at_shift = 0.0
    if offset >= th.shift * relax / 2 or mismatched:
        # Edges, not brightness: edges line up only at the true offset, while the brightness
        # layout (a bright wall over a dark floor) also correlates at many wrong ones.
        cur_edges = cv2.GaussianBlur(cur.grad, (0, 0), EDGE_SIGMA, dst=s.get("edges", cur.grad.shape))
        at_zero = _ncc(ref.edges, cur_edges)
        at_shift = _overlap_ncc(ref.edges, cur_edges, round(2 * dx), round(2 * dy))
    shifted = at_shift >= SHIFT_MATCH and at_shift >= at_zero + SHIFT_GAIN
    if shifted and offset >= th.shift * relax:
        return result("moved", shift=(sx, sy), match=at_shift)

    blurred = sharpness is not None and sharpness < th.sharpness / relax
    # Blur flattens fine texture until it can look covered, but keeps the coarse layout; a
    # blur with little covered needs no layout check (a bus passing a blurred view changes
    # the layout, not the blur).
    if covered >= th.covered * relax and not (blurred and layout >= LAYOUT_NCC and covered < 0.9):
        return result("blocked")
    if blurred:
        return result("defocus")
    # Re-aimed: almost no detailed cell matches and no offset lines the edges up (a small
    # shift also breaks cell matches along thin lines, but the offset then explains it).
    if (
        mismatched
        and detail.mean() >= REAIM_DETAIL_SHARE
        and not shifted
        and max(at_zero, at_shift) < th.match / relax
    ):
        return result("moved", match=max(at_zero, at_shift))
    borderline = (
        covered >= th.covered / 2
        or (sharpness is not None and sharpness < (1.0 + th.sharpness) / 2)
        or offset >= th.shift / 2
        or mismatched
    )
    return result(None, borderline=borderline)


class TamperingDetector(Rule):
    """Events of type ``tampering``: one per episode of the view being blocked, out of focus
    or moved, and one per loss of video.

    Feed it every analysed frame, also those where nothing moves: it looks at the whole
    picture and ignores tracks. A view problem must last ``min_seconds`` (the event starts
    when it began) and ends once the view has been clearly healthy for :data:`HEAL_SECONDS`.
    ``details["kind"]`` is the problem seen first (``blocked``, ``defocus``, ``moved`` or
    ``video_lost``), ``details["kinds"]`` every kind seen in the episode, and the other
    details are the measurements (see :meth:`Assessment.details`).
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
        self._adapt_weight = 0.0
        self._scratch = Scratch()
        # A view problem: when it began, when it was last seen, when the view stopped being
        # a problem and since when it is clearly healthy.
        self._pending_since: float | None = None
        self._last_problem = float("-inf")
        self._ok_since: float | None = None
        self._clear_since: float | None = None
        self._kind: str | None = None
        self._kind_since = 0.0
        self._event: Event | None = None
        self._lost: Event | None = None
        #: The latest frame's assessment (None while learning), for tools and tests.
        self.last: Assessment | None = None

    # -- the engine's hooks ------------------------------------------------------------------

    def update(self, ctx: FrameContext, tracks: dict[int, TrackHistory]) -> list[EventChange]:
        """Assess one frame; report problems that lasted ``min_seconds``, and their end."""
        changes: list[EventChange] = []
        t = ctx.t
        # The frame interval, for adapting; a gap counts as one ordinary interval.
        dt = 0.0 if self._last_t is None else min(max(t - self._last_t, 0.0), 1.0)
        if self._last_t is not None and t - self._last_t >= self.config.lost_seconds - EPS:
            changes += self._gap(ctx, self._last_t)
        elif self._lost is not None:
            changes.append(self._end_lost(t, ctx.at))
        self._last_t = t
        self._last_ctx = ctx

        cur = features(ctx.frame.gray, self._scratch)
        if self._ref is None or self._shape != cur.small.shape:
            self._learn(cur, t)
            return changes
        ref = self._ref
        a = assess(ref, cur, self.thresholds, holding=self._event is not None, scratch=self._scratch)
        self.last = a
        changes += self._track(ctx, a)
        if a.kind is None and self._event is None and self._pending_since is None:
            # A borderline frame (a big vehicle, an exposure jump) is most likely passing:
            # it is learned four times more slowly than a clearly normal one.
            self._adapt_weight += dt / (ADAPT_SECONDS * (4.0 if a.borderline else 1.0))
            if self._adapt_weight >= ADAPT_STEP:
                ref.blend(cur, min(0.5, self._adapt_weight))
                self._adapt_weight = 0.0
        else:
            self._adapt_weight = 0.0
        return changes

    def idle(self, t: float, at: datetime | None) -> list[EventChange]:
        """No frame since the last one: video is lost once that lasts ``lost_seconds``."""
        last, ctx = self._last_t, self._last_ctx
        if last is None or ctx is None or self._lost is not None:
            return []
        now = replace(ctx, t=t, at=at)
        if t - last < self.config.lost_seconds - EPS or self.cooling("video_lost", last):
            return []
        if not self.active(now):
            return []
        self._lost = self._lost_event(now, last, t)
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

    # -- video loss ---------------------------------------------------------------------------

    def _lost_event(self, ctx: FrameContext, since: float, now: float) -> Event:
        details = {"kind": "video_lost", "kinds": ["video_lost"], "seconds": round(now - since, 3)}
        details["fired_t"] = round(now, 3)
        summary = f"video lost: no frames for {now - since:.0f} s"
        return self.new_event(ctx, "video_lost", summary, start_t=since, details=details)

    def _gap(self, ctx: FrameContext, last: float) -> list[EventChange]:
        """Frames came back after a gap of at least ``lost_seconds``."""
        changes: list[EventChange] = []
        if self._lost is None and not self.cooling("video_lost", last) and self.active(ctx):
            self._lost = self._lost_event(ctx, last, ctx.t)
            changes.append(EventChange("start", self._lost))
        if self._lost is not None:
            changes.append(self._end_lost(ctx.t, ctx.at))
        # A problem building up before the gap cannot be said to have lasted through it.
        self._pending_since = None
        return changes

    def _end_lost(self, t: float, at: datetime | None) -> EventChange:
        event, self._lost = self._lost, None
        assert event is not None
        event.details["seconds"] = round(t - event.start_t, 3)
        event.summary = f"video lost: no frames for {t - event.start_t:.0f} s"
        return self.end_event(event, "video_lost", t, at)

    # -- view problems ------------------------------------------------------------------------

    def _learn(self, cur: Features, t: float) -> None:
        if self._shape != cur.small.shape:
            # First frame, or the stream changed resolution: start over.
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
                return [self._rebase(ctx)]
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

    def _rebase(self, ctx: FrameContext) -> EventChange:
        """Accept a moved camera's new view after :data:`REBASE_SECONDS`: end the event, learn again."""
        assert self._event is not None
        self._event.details["new_view_accepted"] = True
        change = self._close(ctx.t, ctx.at)
        self._ref, self._learning, self._learn_start = None, [], None
        return change
