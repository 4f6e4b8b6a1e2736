"""The user transform of the Fourier input (``synthesis.input.transform``).

The input layer evaluates its features at ``transform @ [x, y, 1]``: the matrix maps output
coordinates to input coordinates, so it is the *inverse* of the motion applied to the image.
Coordinates are in units of the image size (the image spans one unit; its centre is 0), with
y pointing down as in images.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def input_transform(translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0
                    ) -> torch.Tensor:
    """The ``transform`` buffer that rotates the image by ``rotate`` degrees and then
    translates it by ``translate`` (fractions of the image width and height).

    Moving the image by ``R`` then ``t`` means sampling the input at ``R^-1 (x - t)``;
    with y pointing down, ``R^-1`` of a rotation by ``a`` degrees is the matrix of ``+a``.
    """
    if len(translate) != 2:
        raise ValueError(f'translate must be (tx, ty), got {tuple(translate)}')
    tx, ty = (float(v) for v in translate)
    angle = math.radians(float(rotate))
    if not all(math.isfinite(v) for v in (tx, ty, angle)):
        raise ValueError(f'translate and rotate must be finite, got {(tx, ty)}, {rotate}')
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    shift = torch.tensor([[1.0, 0.0, -tx], [0.0, 1.0, -ty], [0.0, 0.0, 1.0]],
                         dtype=torch.float64)
    return (rotation @ shift).to(torch.float32)
