"""Evaluate a generator: FID / KID / IS against a dataset, sharing features between metrics.

Metric names say how many images they use: ``fid50k_full`` = 50,000 generated images against
all real images; ``fid50k`` = against at most 50,000 real images; ``kid50k_full``; ``is50k``
(generated only). ``k`` is optional (``fid200_full`` = 200 images) for quick checks.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from genforce_core.api import DatasetError

from .features import extract_generator
from .inception import check_mode
from .scores import (
    MetricError,
    feature_stats,
    fid_from_features,
    frechet_distance,
    inception_score,
    kernel_inception_distance,
)
from .stats_cache import build_dataset, real_features
from .weights import load_inception

_NAME = re.compile(r'^(fid|kid|is)(\d+)(k?)(_full)?$')
KINDS = ('fid', 'kid', 'is')


@dataclass(frozen=True)
class MetricSpec:
    kind: str  # 'fid' | 'kid' | 'is'
    num_gen: int
    max_real: int | None  # None: all real images
    name: str


def parse_metric_name(name: str, num_gen: int | None = None) -> MetricSpec:
    """``'fid50k_full'`` → ``MetricSpec('fid', 50000, None)``; a bare kind (``'fid'``) takes
    ``num_gen`` and all real images."""
    if name in KINDS:
        if not num_gen:
            raise MetricError(f'metric {name!r} needs num_gen (or a name like {name}50k_full)')
        return MetricSpec(name, int(num_gen), None, name)
    match = _NAME.match(name)
    if not match:
        raise MetricError(f'unknown metric name {name!r}: use fid|kid|is followed by the '
                          'number of generated images, e.g. fid50k_full, kid50k_full, is50k, '
                          'fid10k, fid500_full')
    kind, count, kilo, full = match.groups()
    count = int(count) * (1000 if kilo else 1)
    return MetricSpec(kind, count, None if (full or kind == 'is') else count, name)


_DETECTORS: dict[tuple[str, str, str], nn.Module] = {}


def get_detector(inception: str | os.PathLike | nn.Module | None, device,
                 mode: str = 'nvidia') -> nn.Module:
    """The Inception network with the input path of ``mode`` (``'nvidia'``, ``'pytorch_fid'``
    or ``'clean'``, see :mod:`.inception`): a given module, or the weights file (loaded once
    per process; the modes share its weights)."""
    check_mode(mode)
    if isinstance(inception, nn.Module):
        return _with_mode(inception.to(device).eval(), mode)
    key = (str(inception), str(device), mode)
    if key not in _DETECTORS:
        base = (str(inception), str(device), 'nvidia')
        if base not in _DETECTORS:
            _DETECTORS[base] = load_inception(inception, device=device)
        _DETECTORS[key] = _DETECTORS[base].with_mode(mode)
    return _DETECTORS[key]


def _with_mode(detector: nn.Module, mode: str) -> nn.Module:
    if hasattr(detector, 'with_mode'):
        return detector.with_mode(mode)
    if mode != 'nvidia':
        raise MetricError(f'FID mode {mode!r} needs the genforce Inception network '
                          f'(InceptionV3FID), not a {type(detector).__name__}; use '
                          "mode='nvidia' with a custom detector")
    return detector


class EvaluationSession:
    """Computes metrics for one generator; generated and real features are extracted once
    per image count and shared by every metric that needs them."""

    def __init__(self, detector: nn.Module, dataset, *, batch_size: int = 64,
                 mirror: bool = False, cache_dir=None, num_workers: int = 0, seed: int = 0,
                 progress: bool = True, kid_subsets: int = 100, kid_subset_size: int = 1000,
                 is_splits: int = 10):
        self.detector = detector
        self.dataset_spec = dataset
        self.batch_size = batch_size
        self.mirror = mirror
        self.cache_dir = cache_dir
        self.num_workers = num_workers
        self.seed = seed
        self.progress = progress
        self.kid_subsets, self.kid_subset_size, self.is_splits = (kid_subsets, kid_subset_size,
                                                                  is_splits)
        self._dataset = None
        self._real: dict = {}
        self._fake: dict = {}

    @property
    def dataset(self):
        if self._dataset is None:
            if self.dataset_spec is None:
                raise MetricError('FID/KID need real images: give the metric a dataset= (path '
                                  'or ImageDataset config) or evaluate with a dataloader')
            self._dataset = build_dataset(self.dataset_spec, mirror=self.mirror)
        return self._dataset

    def real(self, max_real: int | None) -> dict:
        if max_real not in self._real:
            self._real[max_real] = real_features(
                self.detector, self.dataset, max_items=max_real, mirror=self.mirror,
                batch_size=self.batch_size, num_workers=self.num_workers,
                cache_dir=self.cache_dir, progress=self.progress)
        return self._real[max_real]

    def fake(self, generate, z_dim: int, c_dim: int, num_gen: int) -> tuple:
        if num_gen not in self._fake:
            labels = None
            if c_dim:
                labels = _labels_of(self.dataset_spec, self.mirror) if self.dataset_spec \
                    is not None else None
            self._fake[num_gen] = tuple(t.numpy() for t in extract_generator(
                self.detector, generate, z_dim, num_gen, batch_size=self.batch_size,
                labels=labels, c_dim=c_dim, seed=self.seed, progress=self.progress))
        return self._fake[num_gen]

    def compute(self, spec: MetricSpec, generate, z_dim: int, c_dim: int = 0
                ) -> dict[str, float]:
        feats, logits = self.fake(generate, z_dim, c_dim, spec.num_gen)
        if spec.kind == 'is':
            mean, std = inception_score(logits, self.is_splits)
            return {spec.name: mean, f'{spec.name}_std': std}
        real = self.real(spec.max_real)
        if spec.kind == 'fid':
            if min(len(real['feats']), len(feats)) > feats.shape[1]:  # the reference path
                return {spec.name: frechet_distance(real['mu'], real['sigma'],
                                                    *feature_stats(feats))}
            return {spec.name: fid_from_features(real['feats'], feats)}
        return {spec.name: kernel_inception_distance(
            real['feats'], feats, self.kid_subsets, self.kid_subset_size, seed=self.seed)}


def _labels_of(dataset_spec, mirror: bool) -> np.ndarray | None:
    """The dataset's label rows (conditions for a conditional generator), or None."""
    try:
        dataset = build_dataset(dataset_spec, mirror=mirror, use_labels=True)
    except DatasetError:  # no label table: conditions are drawn uniformly instead
        return None
    if not getattr(dataset, 'has_labels', False):
        return None
    return np.stack([dataset.get_label(i) for i in range(dataset.num_images)])


def evaluate_generator(generator, *, dataset, num_gen: int, batch_size: int = 64,
                       device='cpu', metrics=('fid',), c_dim: int | None = None,
                       inception=None, cache_dir=None, progress: bool = True,
                       mirror: bool = False, seed: int = 0, mode: str = 'nvidia'
                       ) -> dict[str, float]:
    """Evaluate ``generator`` with FID / KID / IS against ``dataset``.

    Args:
        generator: Callable ``generator(z, c)`` returning images ``[N, C, H, W]`` in [-1, 1],
            with attributes ``z_dim`` and (optionally) ``c_dim``. It is called under
            ``torch.no_grad()`` with ``z`` and ``c`` on ``device``.
        dataset: The real images: a path (folder / ``.zip`` / LMDB readable by
            ``genforce_core.data.ImageDataset``) or an ImageDataset config dict. Their
            features come from the statistics cache (computed on first use).
        num_gen: Generated images for the metrics given by kind (``'fid'``, ``'kid'``,
            ``'is'``); full names such as ``'fid50k_full'`` carry their own counts.
        batch_size: Images per detector batch (per process).
        device: Where the detector runs (the generator must already be there).
        metrics: Kinds or full metric names; each result key is the entry as given.
            IS adds ``'<name>_std'``.
        c_dim: Label dimension of a conditional generator (default ``generator.c_dim``);
            conditions are drawn from the dataset's labels, or uniformly over one-hot
            classes when the dataset has none.
        inception: Weights file (either format) or a ready detector module; default
            ``$GENFORCE_INCEPTION_WEIGHTS``, the cache folder, or the download.
        cache_dir: Folder of the real-statistics cache (default
            ``$GENFORCE_CACHE_DIR/fid_stats`` or ``~/.cache/genforce/fid_stats``).
        progress: Show progress bars (rank 0 only).
        mirror: Include x-flipped real images in the statistics.
        seed: Seed of the latents (batch ``b`` uses a generator seeded by ``(seed, b)``).
        mode: Whose numbers to reproduce: ``'nvidia'`` (default; StyleGAN papers, TF FID),
            ``'pytorch_fid'`` (pytorch-fid) or ``'clean'`` (clean-fid's clean mode): the
            resize and scaling of the Inception input (see the plugin README).

    Returns:
        ``{metric: value}``, e.g. ``{'fid': 3.21, 'kid': 0.0012}``. In a distributed run,
        call it on every rank: each extracts its share and all get the same numbers.
    """
    device = torch.device(device)
    detector = get_detector(inception, device, mode)
    session = EvaluationSession(detector, dataset, batch_size=batch_size, mirror=mirror,
                                cache_dir=cache_dir, progress=progress, seed=seed)
    c_dim = int(getattr(generator, 'c_dim', 0) or 0) if c_dim is None else int(c_dim)
    results: dict[str, float] = {}
    for name in metrics:
        spec = parse_metric_name(name, num_gen)
        results.update(session.compute(spec, generator, int(generator.z_dim), c_dim))
    return results
