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


def official_to_genforce(state_dict: dict) -> dict[str, torch.Tensor]:
    """Map an official StyleGAN2-ADA ``state_dict`` to this package's names.

    The names are the same, so this is the identity on keys; values are converted to tensors
    (NumPy arrays are accepted) and the dict is copied, so the input is never modified.
    """
    return {key: torch.as_tensor(np.asarray(value)) if not isinstance(value, torch.Tensor)
            else value for key, value in state_dict.items()}


def genforce_to_official(state_dict: dict) -> dict[str, torch.Tensor]:
    """Inverse of :func:`official_to_genforce` (also the identity on keys)."""
    return dict(state_dict)


def load_official_npz(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an ``.npz`` holding an official ``state_dict`` (one array per key) as tensors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    with np.load(os.fspath(path), allow_pickle=False) as arrays:
        return official_to_genforce({key: np.array(arrays[key]) for key in arrays.files})
