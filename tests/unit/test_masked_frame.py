"""Live frames with privacy masks: both the colour picture and the grey plane are blanked."""

from __future__ import annotations

import numpy as np

from camsight.config import CameraConfig
from camsight.media.masks import PrivacyMask
from camsight.pipeline.live import MaskedFrame
from camsight.sources.frame import Frame


def test_masked_frame_blanks_colour_and_grey_lazily():
    image = np.full((100, 200, 3), 200, np.uint8)
    cam = CameraConfig(masks={"door": {"points": [[0, 0], [0.5, 0], [0.5, 0.5], [0, 0.5]]}})
    mask = PrivacyMask.for_camera(cam, (200, 100))
    assert mask is not None
    frame = MaskedFrame(Frame(3, 1.5, image), mask)
    assert (frame.index, frame.t) == (3, 1.5)
    assert frame.gray[:49, :99].max() == 0 and frame.gray[60:, 120:].min() > 0
    assert frame.image[:49, :99].max() == 0 and frame.image[60:, 120:].min() == 200
    assert image.min() == 200, "the source frame itself is left alone"
