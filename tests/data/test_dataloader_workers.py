"""Datasets survive pickling into DataLoader worker processes (zip and LMDB handles)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genforce_core.data import ImageDataset, ResumableInfiniteSampler, write_dataset


@pytest.mark.parametrize('fmt', ['zip', 'lmdb'])
def test_dataloader_two_workers(image_folder, tmp_path, fmt):
    root, names, arrays, labels = image_folder
    path = write_dataset(list(zip(names, arrays)), tmp_path / f'd.{fmt}', fmt, labels=labels,
                         progress=False)
    ds = ImageDataset(path, use_labels=True, xflip=True)
    ds[0]  # the parent opened its handle before forking: workers must reopen theirs
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False,
                        multiprocessing_context='fork')
    batches = list(loader)
    imgs = torch.cat([b['img'] for b in batches])
    assert imgs.shape == (12, 3, 16, 16) and imgs.dtype == torch.uint8
    np.testing.assert_array_equal(imgs[:6].numpy(), np.stack(arrays).transpose(0, 3, 1, 2))
    assert torch.cat([b['idx'] for b in batches]).tolist() == list(range(12))
    assert torch.cat([b['label'] for b in batches]).shape == (12, 3)


def test_workers_with_sampler(image_folder, tmp_path):
    root, names, arrays, _ = image_folder
    ds = ImageDataset(write_dataset(list(zip(names, arrays)), tmp_path / 'd.zip',
                                    progress=False))
    sampler = ResumableInfiniteSampler(ds, seed=0, rank=0, world_size=1)
    loader = DataLoader(ds, batch_size=3, sampler=sampler, num_workers=2,
                        multiprocessing_context='fork')
    it = iter(loader)
    got = [next(it)['idx'] for _ in range(4)]
    expected = torch.cat([torch.randperm(6, generator=torch.Generator().manual_seed(e))
                          for e in range(2)])
    assert torch.cat(got).tolist() == expected.tolist()
