"""Fixtures of the StyleGAN3 plugin tests: the official reference vectors
(``tests/testdata/stylegan3_official_A``).

A missing or altered copy fails the tests that need it (never skips them): these vectors are
the evidence that our networks compute what the official ones do.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genforce_core.testing import find_testdata

NAME = 'stylegan3_official_A'
PLUGIN_ROOT = Path(__file__).resolve().parents[1]  # find_testdata looks in ROOT/tests/testdata
CONFIGS = ('t', 'r')
FILES = ('meta.json', 'D.npz') + tuple(f'{cfg}/{name}' for cfg in CONFIGS
                                      for name in ('meta.json', 'G.npz', 'io.npz'))


def data_dir() -> Path:
    """The reference folder; FileNotFoundError (a failing test) when it is missing."""
    return find_testdata(NAME, PLUGIN_ROOT, FILES)


def checksums_ok(folder: Path) -> list[str]:
    """Files whose SHA-256 differs from ``SHA256SUMS`` (empty when all match)."""
    bad = []
    for line in (folder / 'SHA256SUMS').read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        if hashlib.sha256((folder / name).read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad


def meta(cfg: str = '') -> dict[str, Any]:
    """``CFG/meta.json`` of one generator; the top-level ``meta.json`` (D) for ``''``."""
    return json.loads((data_dir() / cfg / 'meta.json').read_text())


def arrays(cfg: str, name: str) -> dict[str, np.ndarray]:
    """``CFG/NAME.npz`` (``''`` for the top-level ``D.npz``)."""
    with np.load(data_dir() / cfg / f'{name}.npz') as npz:
        return {key: npz[key] for key in npz.files}


class Reference:
    """What the tests use of the reference folder (the ``reference`` fixture)."""

    CONFIGS = CONFIGS
    FILES = FILES
    data_dir = staticmethod(data_dir)
    checksums_ok = staticmethod(checksums_ok)
    meta = staticmethod(meta)
    arrays = staticmethod(arrays)


@pytest.fixture(scope='session')
def reference() -> type[Reference]:
    return Reference
