"""Precision/recall and perceptual path length as mmengine metrics (METRICS: ``PR``, ``PPL``).

Both draw their own images, like FID/KID/IS: under ``GenerativeValLoop`` (training, with
``KimgEvalHook``) and ``GenerativeTestLoop`` their values go to the log and TensorBoard, and
``genforce metrics`` computes them for a checkpoint.

Names (StyleGAN2-ADA's ``metric_main.py``):

* ``pr50k3_full``: 50k generated images, ``k = 3``, against up to 200k real images (keys
  ``pr50k3_full_precision``, ``pr50k3_full_recall``); ``pr50k3``: against at most 50k real
  images. Other counts: ``pr10k3`` (thousands) or ``pr500_3_full`` (500 images).
* ``ppl2_wend`` (w, endpoints, whole image), ``ppl_zfull``, ``ppl_wfull``, ``ppl_zend``,
  ``ppl_wend`` (face crop): 50k samples, ``eps = 1e-4``.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Any

import torch
from mmengine.evaluator import BaseMetric

from genforce_core.api import METRICS

from .metrics import InceptionMetric, generator_of, unwrap
from .scores import MetricError

PR_REAL_FULL = 200000  # NVIDIA's max_real of pr50k3_full
_PR_NAME = re.compile(r'^pr(?:(\d+)k|(\d+)_)(\d+)(_full)?$')


@dataclass(frozen=True)
class PRSpec:
    name: str
    num_gen: int
    k: int
    max_real: int
    full: bool


def parse_pr_name(name: str) -> PRSpec:
    """``'pr50k3_full'`` → 50,000 generated images, ``k = 3``, up to 200k real images."""
    match = _PR_NAME.match(name)
    if not match:
        raise MetricError(f'unknown precision/recall metric {name!r}: use pr<count>k<k>[_full] '
                          'such as pr50k3_full, pr10k3, or pr<count>_<k>[_full] such as '
                          'pr500_3_full')
    kilo, units, k, full = match.groups()
    num_gen = int(kilo) * 1000 if kilo else int(units)
    return PRSpec(name, num_gen, int(k), PR_REAL_FULL if full else num_gen, bool(full))


def is_pr_name(name: str) -> bool:
    return bool(_PR_NAME.match(name))


_VGG: dict[tuple, torch.nn.Module] = {}


def get_vgg16(vgg16, device, *, lpips: bool = False, lpips_path=None,
              classifier: bool = True) -> torch.nn.Module:
    """A given VGG16 module, or the weights file loaded once per process and device."""
    if isinstance(vgg16, torch.nn.Module):
        return vgg16.to(device).eval()
    from .vgg16 import load_vgg16
    key = (str(vgg16), str(lpips_path), str(device), lpips, classifier)
    if key not in _VGG:
        _VGG[key] = load_vgg16(vgg16, lpips=lpips, lpips_path=lpips_path,
                               classifier=classifier, device=device)
    return _VGG[key]


def generator_network(model) -> torch.nn.Module:
    """The network that generates: a GAN's EMA generator, or the model itself."""
    model = unwrap(model)
    return getattr(model, 'inference_generator', None) or getattr(model, 'generator', None) \
        or model


def dataset_labels(dataset_spec, mirror: bool):
    """Label rows of the dataset (conditions for a conditional generator), or None."""
    if dataset_spec is None:
        return None
    from .evaluation import _labels_of
    return _labels_of(dataset_spec, mirror)


class _GeneratorMetric(InceptionMetric):
    """Base of :class:`PR` and :class:`PPL`: a metric the generative loops run through
    :meth:`evaluate_model` (subclassing InceptionMetric is what those loops look for; the
    Inception-specific constructor is not used)."""

    def __init__(self, collect_device: str = 'cpu', prefix: str | None = None):
        BaseMetric.__init__(self, collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples) -> None:
        raise MetricError(f'{type(self).__name__} generates its own images: evaluate with '
                          "val_cfg = dict(type='GenerativeValLoop') / test_cfg = "
                          "dict(type='GenerativeTestLoop'), or `genforce metrics`")

    def compute_metrics(self, results: list) -> dict[str, float]:
        raise NotImplementedError


@METRICS.register_module()
class PR(_GeneratorMetric):
    """Improved precision and recall with VGG16 features (default ``pr50k3_full``).

    Args:
        name: ``pr<count>k<k>[_full]`` or ``pr<count>_<k>[_full]`` (see the module doc).
        dataset: Real images (path or ImageDataset config); default: the loop's dataset.
        vgg16: VGG16 weights (NVIDIA's ``vgg16.pt`` or torchvision's
            ``vgg16-397923af.pth``) or a module; default ``$GENFORCE_VGG16_WEIGHTS``, the
            cache folder, or the download.
        batch_size: Images per VGG16 batch (per process).
        mirror: Add x-flipped real images (NVIDIA ignores it for ``_full`` names; so does
            ``genforce metrics``).
        num_gen, max_real: Override the counts of the name.
        row_batch_size, col_batch_size: Blocks of the distance matrix (10000 as NVIDIA).
        cache_dir, num_workers, seed, progress: As for FID.
    """

    def __init__(self, name: str = 'pr50k3_full', dataset: Any = None, vgg16: Any = None,
                 batch_size: int = 64, mirror: bool = False, cache_dir: str | None = None,
                 num_workers: int = 2, seed: int = 0, progress: bool = True,
                 num_gen: int | None = None, max_real: int | None = None,
                 row_batch_size: int = 10000, col_batch_size: int = 10000, **kwargs):
        super().__init__(**kwargs)
        self.spec = parse_pr_name(name)
        if num_gen:  # without _full, the real count follows the generated one
            self.spec = replace(self.spec, num_gen=int(num_gen),
                                max_real=self.spec.max_real if self.spec.full else int(num_gen))
        if max_real:
            self.spec = replace(self.spec, max_real=int(max_real))
        self.dataset, self.vgg16, self.batch_size, self.mirror = dataset, vgg16, batch_size, mirror
        self.cache_dir, self.num_workers, self.seed, self.progress = (cache_dir, num_workers,
                                                                      seed, progress)
        self.row_batch_size, self.col_batch_size = row_batch_size, col_batch_size

    def evaluate_model(self, model, dataset=None, shared: dict | None = None,
                       device=None) -> dict[str, float]:
        from .precision_recall import (
            cached_dataset_features,
            generator_features,
            precision_recall,
        )
        from .stats_cache import build_dataset

        generate, z_dim, c_dim = generator_of(model)
        device = device or next(generator_network(model).parameters()).device
        spec_data = self.dataset if self.dataset is not None else dataset
        if spec_data is None:
            raise MetricError(f'{self.spec.name} needs real images: give the metric a '
                              'dataset= (path or ImageDataset config) or pass --data')
        vgg = get_vgg16(self.vgg16, device)
        real_set = build_dataset(spec_data, mirror=self.mirror)
        options = dict(batch_size=self.batch_size, progress=self.progress)
        real = cached_dataset_features(vgg, real_set, min(len(real_set), self.spec.max_real),
                                       cache_dir=self.cache_dir, num_workers=self.num_workers,
                                       **options)
        shared = {} if shared is None else shared
        key = ('vgg16 features', id(vgg), self.spec.num_gen, self.seed, self.batch_size)
        if key not in shared:
            labels = dataset_labels(spec_data, self.mirror) if c_dim else None
            shared[key] = generator_features(vgg, generate, z_dim, self.spec.num_gen,
                                             labels=labels, c_dim=c_dim, seed=self.seed,
                                             **options)
        precision, recall = precision_recall(
            real.to(device), shared[key].to(device), self.spec.k,
            row_batch_size=self.row_batch_size, col_batch_size=self.col_batch_size)
        return {f'{self.spec.name}_precision': precision, f'{self.spec.name}_recall': recall}


@METRICS.register_module()
class PPL(_GeneratorMetric):
    """Perceptual path length with LPIPS-VGG (default ``ppl2_wend``).

    Args:
        name: ``ppl2_wend``, ``ppl_zfull``, ``ppl_wfull``, ``ppl_zend`` or ``ppl_wend``.
        vgg16: VGG16 weights (NVIDIA's ``vgg16.pt`` holds the LPIPS weights too; with
            torchvision's file the LPIPS layers come from ``lpips``) or a module holding LPIPS
            weights; default ``$GENFORCE_VGG16_WEIGHTS``, the cache, or the download.
        lpips: The ``lpips`` package's ``vgg.pth``; default ``$GENFORCE_LPIPS_WEIGHTS``, the
            cache, an installed ``lpips`` package, or the download.
        num_samples: Override the 50k samples.
        batch_size: Paths per batch (2 as NVIDIA; each path renders two images).
        dataset: Real images whose labels condition a conditional generator.
        epsilon: Step along the path (1e-4).
        seed, progress: As for FID.
    """

    def __init__(self, name: str = 'ppl2_wend', vgg16: Any = None, lpips: str | None = None,
                 num_samples: int | None = None, batch_size: int = 2, dataset: Any = None,
                 epsilon: float | None = None, seed: int = 0, progress: bool = True,
                 **kwargs):
        from .ppl import PPL_METRICS
        super().__init__(**kwargs)
        if name not in PPL_METRICS:
            raise MetricError(f'unknown PPL metric {name!r}: use one of '
                              f'{", ".join(PPL_METRICS)}')
        self.name, self.config = name, PPL_METRICS[name]
        if num_samples:
            self.config = replace(self.config, num_samples=int(num_samples))
        if epsilon:
            self.config = replace(self.config, epsilon=float(epsilon))
        self.vgg16, self.lpips, self.batch_size, self.dataset = vgg16, lpips, batch_size, dataset
        self.seed, self.progress = seed, progress

    def evaluate_model(self, model, dataset=None, shared: dict | None = None,
                       device=None) -> dict[str, float]:
        from .lpips import lpips_distance
        from .ppl import perceptual_path_length

        net = generator_network(model)
        device = device or next(net.parameters()).device
        vgg = get_vgg16(self.vgg16, device, lpips=True, lpips_path=self.lpips,
                        classifier=False)
        c_dim = int(getattr(net, 'c_dim', 0) or 0)
        spec_data = self.dataset if self.dataset is not None else dataset
        labels = dataset_labels(spec_data, False) if c_dim else None
        value = perceptual_path_length(net, functools.partial(lpips_distance, vgg), self.config,
                                       batch_size=self.batch_size, labels=labels, c_dim=c_dim,
                                       seed=self.seed, progress=self.progress)
        return {self.name: value}

