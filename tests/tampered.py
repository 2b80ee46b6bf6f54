"""Tampering applied to real frames (grey planes), for the tampering tests and its evaluation."""

from __future__ import annotations

import cv2
import numpy as np


def blocked(gray: np.ndarray) -> np.ndarray:
    """A black patch over 60% of the picture (77% x 78%, centred): a hand or a cloth."""
    h, w = gray.shape
    out = gray.copy()
    out[round(h * 0.11) : round(h * 0.89), round(w * 0.115) : round(w * 0.885)] = 16
    return out


def blurred(gray: np.ndarray) -> np.ndarray:
    """Heavy defocus: Gaussian blur with sigma 1% of the width."""
    return cv2.GaussianBlur(gray, (0, 0), 0.01 * gray.shape[1])


def shifted(gray: np.ndarray) -> np.ndarray:
    """The camera turned: the picture moves 10% of the width sideways."""
    h, w = gray.shape
    m = np.float32([[1, 0, 0.10 * w], [0, 1, 0]])
    return cv2.warpAffine(gray, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
