"""Reading weights saved by NVIDIA's StyleGAN2-ADA (PyTorch) release.

The networks of this package use the official parameter and buffer names (``mapping.fc0.weight``,
``synthesis.b8.conv0.affine.bias``, ``b32.fromrgb.weight``, ``b4.out.bias``, ...) and the same
tensor layouts and run-time scaling, so an official ``state_dict`` loads as it is:

    G = Generator(**G_init_kwargs)
    G.load_state_dict(load_official_npz('G.npz'))

Converting the TensorFlow ``.pkl`` releases is the converters plugin's job.
"""
from __future__ import annotations

import os

import numpy as np
import torch


def load_official_npz(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an ``.npz`` holding an official ``state_dict`` (one array per key) as tensors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    with np.load(os.fspath(path), allow_pickle=False) as arrays:
        return {key: torch.from_numpy(np.array(arrays[key])) for key in arrays.files}
