"""The progressive-growing schedule, the fading of real images and the loader rebuild."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from genforce_core.data.sampler import ResumableInfiniteSampler
from genforce_core.hooks.progressive import (
    LODSchedule,
    ProgressiveGrowingHook,
    rebuild_loader,
    set_lod,
)
from genforce_core.models import ProgressiveDataPreprocessor, fade_images


def test_schedule_hits_the_official_kimg_boundaries():
    # StyleGAN FFHQ 1024: start 8x8 (lod 7), 600 kimg per level and per fade-in.
    s = LODSchedule(1024, start_resolution=8, training_kimg=600, transition_kimg=600,
                    batch_size={8: 32, 16: 16}, lr=dict(generator={128: 0.0015}))
    kimg = {0: 7.0, 300: 7.0, 600: 7.0, 750: 6.75, 900: 6.5, 1200: 6.0, 1800: 6.0,
            2100: 5.5, 2400: 5.0, 7800: 1.0, 8100: 0.5, 8400: 0.0, 25000: 0.0}
    assert {k: s.lod(k * 1000) for k in kimg} == kimg
    assert s(600_000).resolution == 8 and s(600_001).resolution == 16
    assert s(600_000).batch_size == 32 and s(600_001).batch_size == 16
    assert s(0).batch_size == 32 and s(3_000_000).batch_size is None  # 32x32: loader's
    # 128x128 fades in from 4200 kimg; its lr applies from then on.
    assert s(4_200_000).lr['generator'] is None and s(4_200_001).lr['generator'] == 0.0015
    assert s(4_200_001).resolution == 128
    # PGGAN: start 4x4, 800 kimg.
    p = LODSchedule(256, start_resolution=4, training_kimg=800, transition_kimg=800)
    assert [p.lod(k * 1000) for k in (0, 800, 1200, 1600, 9600, 12000)] == \
        [6.0, 6.0, 5.5, 5.0, 0.0, 0.0]


def test_schedule_without_fade_in_and_bad_arguments():
    s = LODSchedule(64, start_resolution=4, training_kimg=1, transition_kimg=0)
    assert [s.lod(i) for i in (0, 999, 1000, 1999, 2000, 5000)] == [4, 4, 3, 3, 2, 0]
    with pytest.raises(ValueError, match='power of two'):
        LODSchedule(100)
    with pytest.raises(ValueError, match='start_resolution'):
        LODSchedule(64, start_resolution=128)
    with pytest.raises(ValueError, match='keys must be resolutions'):
        LODSchedule(64, batch_size={'big': 3})


def test_iterations_match_a_step_by_step_simulation():
    s = LODSchedule(64, start_resolution=4, training_kimg=0.05, transition_kimg=0.03,
                    batch_size={4: 16, 8: 12, 16: 6, 32: 5})
    for total, default, world in [(1000, 4, 1), (777, 3, 2), (10, 7, 1), (333, 4, 3)]:
        seen = iters = 0
        while seen < total:
            seen += (s(seen).batch_size or default) * world
            iters += 1
        assert s.iterations(total, default, world) == iters


def test_fade_images_levels_and_continuity():
    img = torch.randn(2, 3, 16, 16)
    assert torch.equal(fade_images(img, 0), img)
    level1 = F.interpolate(F.avg_pool2d(img, 2), scale_factor=2, mode='nearest')
    assert torch.allclose(fade_images(img, 1), level1)
    half = fade_images(img, 0.5)
    assert torch.allclose(half, (img + level1) / 2, atol=1e-6)
    # Continuous where a level ends: lod -> 1 from below equals lod = 1.
    assert torch.allclose(fade_images(img, 1 - 1e-6), fade_images(img, 1), atol=1e-4)
    assert torch.allclose(fade_images(img, 2 + 1e-6), fade_images(img, 2), atol=1e-4)
    with pytest.raises(ValueError, match='divisible'):
        fade_images(torch.randn(1, 3, 12, 12), 2.5)


def test_preprocessor_fades_only_training_batches():
    pre = ProgressiveDataPreprocessor()
    assert set_lod(pre, 2.0) == 1 and float(pre.lod) == 2.0
    data = dict(img=torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8))
    train = pre(data, True)['img']
    val = pre(data, False)['img']
    assert torch.equal(val, data['img'].float() / 127.5 - 1)
    assert torch.allclose(train, fade_images(val, 2.0))
    assert 'lod' in pre.state_dict()


def test_rebuilt_loader_continues_the_sampler_stream():
    data = TensorDataset(torch.arange(20))
    sampler = ResumableInfiniteSampler(data, shuffle=True, seed=3, rank=0, world_size=1)
    loader = DataLoader(data, batch_size=4, sampler=sampler)
    first = next(iter(loader))[0].tolist()
    bigger = rebuild_loader(loader, 6)
    assert bigger.batch_size == 6 and bigger.sampler is sampler
    sampler.set_position(4)
    second = next(iter(bigger))[0].tolist()
    stream = sampler.epoch_indices(0).tolist()
    assert first + second == stream[:10]


def test_hook_needs_lod_buffers():
    model = nn.Module()
    model.register_buffer('images_seen', torch.zeros((), dtype=torch.int64))
    with pytest.raises(ValueError, match="no buffer named 'lod'"):
        ProgressiveGrowingHook().before_train(SimpleNamespace(model=model))
