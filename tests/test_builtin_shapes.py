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


def test_the_written_dataset_labels_each_image_with_its_factors(tmp_path):
    from genforce_core.data import ImageDataset
    from genforce_core.data.builtin import ensure_builtin_dataset, shape_combination, shape_label

    path = ensure_builtin_dataset(tmp_path, resolution=8, num_images=50)
    dataset = ImageDataset(str(path), use_labels=True)
    assert dataset.label_dim == 15  # shape (3), colour (8) and ground (4) one-hot
    for i, (_, kind, colour, ground) in enumerate(make_shapes_samples(50, 8, seed=0)):
        label = dataset.get_label(i)
        assert label.tolist() == shape_label(kind, colour, ground)
        assert (label[:3].argmax(), label[3:11].argmax(), label[11:].argmax()) == \
            (kind, colour, ground) and label.sum() == 3
    assert shape_combination(2, 7, 3) == 95 and shape_combination(1, 0, 0) == 32


def test_runs_starting_at_once_share_one_complete_dataset(tmp_path):
    """Two processes asking for the built-in set together: one writes, the other waits and
    reuses it (two writers once replaced each other's half-written temporary file)."""
    import subprocess
    import sys

    from genforce_core.data import ImageDataset

    code = ('import sys; from genforce_core.data.builtin import ensure_builtin_dataset; '
            'print(ensure_builtin_dataset(sys.argv[1], resolution=8, num_images=300))')
    runs = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path)], text=True,
                             stdout=subprocess.PIPE) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert sorted('Wrote' in out for out in outputs) == [False, True], outputs
    assert ImageDataset(str(tmp_path / 'shapes8.zip')).num_images == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ['shapes8.zip', 'shapes8.zip.lock']
