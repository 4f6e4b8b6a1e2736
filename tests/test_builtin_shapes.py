"""The built-in shapes' pixels are fixed, and the factors that drew them are exposed."""
from __future__ import annotations

import hashlib

import numpy as np

from genforce_core.data.builtin import (
    BACKGROUNDS,
    SHAPE_COLOURS,
    draw_shape_image,
    make_shapes_images,
    make_shapes_samples,
)

# sha256 of the first 50 images of builtin:shapes32 (seed 0): datasets written earlier, the
# shapes classifier's training data and published numbers all depend on these pixels.
SHAPES32_FIRST50 = '8e57791198e4a83b0af74a024781b87d4feb14961204f162d9721d0ffb49b75f'


def test_pixels_are_unchanged():
    digest = hashlib.sha256()
    for _, image in make_shapes_images(50, 32, seed=0):
        digest.update(image.tobytes())
    assert digest.hexdigest() == SHAPES32_FIRST50


def test_samples_give_the_pixels_and_the_factors_that_drew_them():
    images = [image for _, image in make_shapes_images(60, 32, seed=3)]
    samples = list(make_shapes_samples(60, 32, seed=3))
    seen = set()
    for i, (image, kind, colour, ground) in enumerate(samples):
        assert np.array_equal(image, images[i])
        assert draw_shape_image(np.random.default_rng([3, i]), 32)[1] == kind
        assert tuple(image[0, 0]) == BACKGROUNDS[ground]  # corners are always ground
        # the shape's inside is exactly its fill colour
        assert (image == SHAPE_COLOURS[colour]).all(axis=-1).sum() > 40
        seen.add((kind, colour, ground))
    assert len({k for k, _, _ in seen}) == 3 and len({c for _, c, _ in seen}) == 8
