"""Helpers for the data tests: small image folders written on the fly."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def random_images(n: int, res: int, seed: int = 0, channels: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (res, res, channels) if channels > 1 else (res, res)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(n)]


def write_folder(root: Path, arrays: list[np.ndarray], ext: str = 'png') -> list[str]:
    """Write arrays as images under ``root`` (two subfolders); return relative names."""
    names = []
    for i, arr in enumerate(arrays):
        name = f'{"ab"[i % 2]}/img_{i:03d}.{ext}'
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(root / name)
        names.append(name)
    return names


class Helpers:
    random_images = staticmethod(random_images)
    write_folder = staticmethod(write_folder)


@pytest.fixture
def helpers() -> type[Helpers]:
    """``random_images`` and ``write_folder`` for tests (conftest is not importable)."""
    return Helpers


@pytest.fixture
def image_folder(tmp_path: Path):
    """A folder of 6 random 16x16 RGB PNGs, their arrays and int labels."""
    root = tmp_path / 'src'
    arrays = random_images(6, 16)
    names = write_folder(root, arrays)
    labels = {name: i % 3 for i, name in enumerate(names)}
    return root, names, arrays, labels


@pytest.fixture
def cli_main():
    """The ``genforce`` command line, called in-process."""
    from genforce_core.cli.main import main

    return main
