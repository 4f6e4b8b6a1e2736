"""Fixtures of the metrics_fid tests: a random-weight Inception (no download) and tiny data."""
from __future__ import annotations

import pytest

from genforce_metrics_fid.testing import (
    InceptionV3FID,
    TinyGenerator,
    random_inception,
    write_shapes,
)


@pytest.fixture(scope='session')
def detector() -> InceptionV3FID:
    return random_inception(0)


@pytest.fixture()
def tiny_generator() -> TinyGenerator:
    return TinyGenerator()


@pytest.fixture(scope='session')
def shapes_folder(tmp_path_factory):
    """40 coloured-shape PNGs (32x32) in a folder."""
    return write_shapes(tmp_path_factory.mktemp('shapes_folder'), 40)
