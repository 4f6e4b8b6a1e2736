"""evaluate_generator end to end, and the real-statistics cache."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from genforce_core.data import ImageDataset
from genforce_metrics_fid import evaluate_generator, scores, stats_cache
from genforce_metrics_fid.features import latent_generator, to_uint8
from genforce_metrics_fid.testing import random_inception, write_shapes


def direct_features(detector, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    feats, logits = detector(images)
    return feats.numpy(), logits.numpy()


def test_evaluate_generator_equals_a_direct_computation(detector, tiny_generator, shapes_folder,
                                                        tmp_path):
    results = evaluate_generator(tiny_generator, dataset=str(shapes_folder), num_gen=20,
                                 batch_size=8, metrics=('fid', 'kid', 'is'), inception=detector,
                                 cache_dir=tmp_path, progress=False)
    assert set(results) == {'fid', 'kid', 'is', 'is_std'}
    # The same images by hand: batch b of 8 draws its latents from latent_generator(0, b).
    fakes = torch.cat([to_uint8(tiny_generator(torch.randn(n, 8, generator=latent_generator(0, b)),
                                               torch.zeros(n, 0)))
                       for b, n in enumerate((8, 8, 4))])
    fake_feats, fake_logits = direct_features(detector, fakes)
    dataset = ImageDataset(shapes_folder)
    reals = torch.stack([dataset[i]['img'] for i in range(len(dataset))])
    real_feats, _ = direct_features(detector, reals)
    assert results['fid'] == pytest.approx(scores.fid_from_features(real_feats, fake_feats),
                                           rel=1e-6)
    assert results['kid'] == pytest.approx(
        scores.kernel_inception_distance(real_feats, fake_feats), rel=1e-6)
    mean, std = scores.inception_score(fake_logits)
    assert results['is'] == pytest.approx(mean, rel=1e-6)
    assert results['is_std'] == pytest.approx(std, rel=1e-3)  # a tiny std: float32 noise
    # Full metric names carry their own counts and share the generated features.
    named = evaluate_generator(tiny_generator, dataset=str(shapes_folder), num_gen=0,
                               batch_size=8, metrics=('fid20_full', 'fid20'), inception=detector,
                               cache_dir=tmp_path, progress=False)
    assert named['fid20_full'] == pytest.approx(results['fid'], rel=1e-9)
    assert named['fid20'] != named['fid20_full']  # only the first 20 real images


def test_conditional_generator_without_dataset_labels_draws_one_hot(detector, shapes_folder,
                                                                    tmp_path):
    from genforce_metrics_fid.testing import TinyGenerator
    seen = []

    class Recording(TinyGenerator):
        def forward(self, z, c):
            seen.append(c)
            return super().forward(z, c)

    results = evaluate_generator(Recording(c_dim=3), dataset=str(shapes_folder), num_gen=10,
                                 batch_size=5, inception=detector, cache_dir=tmp_path,
                                 progress=False)
    assert np.isfinite(results['fid'])
    c = torch.cat(seen)
    assert c.shape == (10, 3) and torch.equal(c.sum(1), torch.ones(10))


@pytest.fixture()
def folder(tmp_path):
    (tmp_path / 'data').mkdir()
    return write_shapes(tmp_path / 'data', 12)


def test_real_statistics_are_cached_and_invalidated(detector, folder, tmp_path, monkeypatch):
    cache = tmp_path / 'cache'
    first = stats_cache.real_features(detector, str(folder), cache_dir=cache, progress=False)
    assert os.path.isfile(first['path']) and len(first['feats']) == 12

    calls = []
    real_extract = stats_cache.extract_dataset

    def counting(*args, **kwargs):
        calls.append(1)
        return real_extract(*args, **kwargs)
    monkeypatch.setattr(stats_cache, 'extract_dataset', counting)

    again = stats_cache.real_features(detector, str(folder), cache_dir=cache, progress=False)
    assert not calls and again['path'] == first['path']
    np.testing.assert_array_equal(again['sigma'], first['sigma'])

    # Rewriting an image (same name, new content) invalidates the entry.
    write_shapes(folder, 1, seed=9)
    changed = stats_cache.real_features(detector, str(folder), cache_dir=cache, progress=False)
    assert len(calls) == 1 and changed['path'] != first['path']
    assert not np.allclose(changed['mu'], first['mu'])
    # So do a new image, the mirror setting, the image count and another detector.
    write_shapes(folder, 13)
    paths = {changed['path']}
    for kwargs in (dict(), dict(mirror=True), dict(max_items=5)):
        paths.add(stats_cache.real_features(detector, str(folder), cache_dir=cache,
                                            progress=False, **kwargs)['path'])
    other = random_inception(seed=1)
    paths.add(stats_cache.real_features(other, str(folder), cache_dir=cache,
                                        progress=False)['path'])
    assert len(paths) == 5 and len(calls) == 5
    mirrored = np.load(sorted(cache.glob('*-26-*.npz'))[0])['feats']
    assert len(mirrored) == 26  # 13 images and their x-flips


def test_overlapped_generation_gives_the_same_features(detector, tiny_generator):
    from genforce_metrics_fid.features import extract_generator
    serial = extract_generator(detector, tiny_generator, 8, 10, batch_size=4, overlap=False,
                               progress=False)
    overlapped = extract_generator(detector, tiny_generator, 8, 10, batch_size=4, overlap=True,
                                   progress=False)
    for a, b in zip(serial, overlapped):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def broken(z, c):
        raise RuntimeError('generator failed on purpose')
    with pytest.raises(RuntimeError, match='on purpose'):
        extract_generator(detector, broken, 8, 10, batch_size=4, overlap=True, progress=False)
