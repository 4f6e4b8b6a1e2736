"""Batched homogeneous matrices: 3x3 for 2-D geometry, 4x4 for RGB colour transforms.

Every function takes per-image parameters of shape ``[N]`` and returns ``[N, 3, 3]`` or
``[N, 4, 4]`` in their dtype and device.
"""
from __future__ import annotations

import math

import torch


def _eye(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device).repeat(like.shape[0], 1, 1)


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(3, tx)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(3, sx)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` (radians) from the x axis towards the y axis."""
    m = _eye(3, theta)
    c, s = theta.cos(), theta.sin()
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def translate3d(t: torch.Tensor) -> torch.Tensor:
    """Adds ``t`` to all three colour channels."""
    m = _eye(4, t)
    m[:, :3, 3] = t[:, None]
    return m


def scale3d(s: torch.Tensor) -> torch.Tensor:
    """Multiplies all three colour channels by ``s``."""
    m = _eye(4, s)
    for i in range(3):
        m[:, i, i] = s
    return m


def luma_axis(like: torch.Tensor) -> torch.Tensor:
    """Unit vector along the grey axis ``(1, 1, 1) / sqrt(3)`` as a ``[4]`` direction."""
    return torch.tensor([1, 1, 1, 0], dtype=like.dtype, device=like.device) / math.sqrt(3)


def luma_flip(flip: torch.Tensor) -> torch.Tensor:
    """Householder reflection across the plane orthogonal to the luma axis where
    ``flip == 1`` (identity where 0): inverts luminance, keeps hue and saturation."""
    v = luma_axis(flip)
    return _eye(4, flip) - 2 * torch.outer(v, v)[None] * flip[:, None, None]


def rotate_around_luma(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by ``theta`` around the luma axis (a hue rotation), by Rodrigues' formula."""
    v = luma_axis(theta)[:3]
    k = torch.zeros(3, 3, dtype=theta.dtype, device=theta.device)
    k[0, 1], k[0, 2], k[1, 2] = -v[2], v[1], -v[0]
    k = k - k.T  # cross-product matrix of v
    c, s = theta.cos()[:, None, None], theta.sin()[:, None, None]
    m = _eye(4, theta)
    m[:, :3, :3] = c * torch.eye(3, dtype=theta.dtype, device=theta.device) + s * k + \
        (1 - c) * torch.outer(v, v)
    return m


def saturate(s: torch.Tensor) -> torch.Tensor:
    """Scales the colour component orthogonal to the luma axis by ``s``."""
    v = luma_axis(s)
    vv = torch.outer(v, v)[None]
    eye = _eye(4, s)
    eye3 = eye.clone()
    eye3[:, 3, 3] = 0
    return vv + (eye3 - vv) * s[:, None, None] + (eye - eye3)
