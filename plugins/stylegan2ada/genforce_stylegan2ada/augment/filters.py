"""FIR filters of the augmentation pipeline, derived from their definitions.

* :func:`symlet_lowpass`: the scaling (low-pass) filter of an orthogonal wavelet with ``n``
  vanishing moments, by spectral factorisation of Daubechies' maximally flat half-band
  polynomial, choosing the roots whose phase is closest to linear (a "symlet"). Because the
  filter is orthogonal to its own even shifts, 2x up-sampling with it followed by 2x
  down-sampling with its mirror image is exactly the identity: the geometric transforms of
  the pipeline are lossless where they do nothing, and leak no aliasing where they do.
* :func:`band_filters`: four zero-phase FIR filters splitting the spectrum into the octave
  bands [0, pi/8], [pi/8, pi/4], [pi/4, pi/2], [pi/2, pi]; they sum to a unit impulse, so unit
  gains give back the image.
"""
from __future__ import annotations

import itertools
from functools import cache
from math import comb

import numpy as np


def _maxflat_roots(n: int) -> np.ndarray:
    """Roots in ``y = sin^2(w/2)`` of ``P(y) = sum_k C(n-1+k, k) y^k`` (degree ``n - 1``)."""
    coeffs = [comb(n - 1 + k, k) for k in range(n)]  # increasing powers
    return np.roots(coeffs[::-1]) if n > 1 else np.zeros(0)


def _phase_nonlinearity(h: np.ndarray) -> float:
    """Squared deviation of the unwrapped phase of ``h`` from its best linear fit over the
    pass band (where most of the energy is)."""
    w = np.linspace(0, np.pi * 0.75, 256)
    response = np.exp(-1j * np.outer(w, np.arange(len(h)))) @ h
    phase = np.unwrap(np.angle(response))
    slope, offset = np.polyfit(w, phase, 1)
    return float(np.sum((phase - (slope * w + offset)) ** 2))


@cache
def symlet_lowpass(n: int = 6) -> tuple[float, ...]:
    """Low-pass filter (``2 n`` taps, sum ``sqrt(2)``) of the least-asymmetric orthogonal
    wavelet with ``n`` vanishing moments.

    ``|H(w)|^2 = 2 cos^{2n}(w/2) P(sin^2(w/2))``. Each root ``y_j`` of ``P`` gives a pair
    ``z, 1/z`` of roots of ``z^2 + (4 y_j - 2) z + 1``; taking one root of every pair (the same
    choice for complex-conjugate pairs, so the taps stay real) gives an orthogonal filter, and
    among those choices we keep the one with the most linear phase.
    """
    if n < 1:
        raise ValueError(f'a wavelet needs n >= 1 vanishing moments, got {n}')
    groups: list[list[complex]] = []  # roots y_j, conjugate pairs grouped together
    for y in _maxflat_roots(n):
        if y.imag < -1e-9:
            continue
        groups.append([y, np.conj(y)] if y.imag > 1e-9 else [y.real])
    best, best_score = None, np.inf
    for choice in itertools.product((0, 1), repeat=len(groups)):
        zeros = [-1.0] * n
        for pick, group in zip(choice, groups):
            for y in group:
                pair = np.roots([1, 4 * y - 2, 1])
                pair = pair[np.argsort(np.abs(pair))]  # inside, outside the unit circle
                z = pair[pick]
                zeros.append(z)
        h = np.real(np.poly(zeros))
        h = h / h.sum() * np.sqrt(2)
        score = _phase_nonlinearity(h)
        if score < best_score - 1e-12:
            best, best_score = h, score
    return tuple(float(v) for v in best)


@cache
def band_filters(taps: int = 33) -> np.ndarray:
    """``[4, taps]`` zero-phase filters for the octave bands up to pi/8, pi/4, pi/2 and pi.

    Built from Kaiser-windowed sinc low-passes ``L(c)`` with cut-offs ``c`` in
    ``(pi/8, pi/4, pi/2)``: the bands are ``L1``, ``L2 - L1``, ``L3 - L2``, ``delta - L3``.
    """
    if taps % 2 == 0:
        raise ValueError(f'band filters need an odd number of taps, got {taps}')
    t = np.arange(taps) - taps // 2
    window = np.kaiser(taps, 6.0)

    def lowpass(cutoff: float) -> np.ndarray:  # cutoff as a fraction of pi
        h = cutoff * np.sinc(cutoff * t) * window
        return h / h.sum()

    delta = (t == 0).astype(np.float64)
    lows = [lowpass(c) for c in (1 / 8, 1 / 4, 1 / 2)]
    return np.stack([lows[0], lows[1] - lows[0], lows[2] - lows[1], delta - lows[2]])
