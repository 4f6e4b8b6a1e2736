"""FID, KID and IS as mmengine metrics (METRICS registry).

With :class:`~genforce_metrics_fid.loops.GenerativeValLoop` / ``GenerativeTestLoop`` (the
recommended set-up) a metric draws its own ``num_gen`` images from the model's inference
(EMA) generator and compares them with the cached real statistics: ``fid50k_full`` really
uses 50k generated images, whatever the size of the dataset. Metrics sharing an image count
share the generated features (``fid50k_full`` + ``kid50k_full`` + ``is50k`` generate once).

Under mmengine's plain ``ValLoop`` / ``TestLoop`` they fall back to the model's ``val_step``
output (one ``fake_img`` per ``real_img``, uint8) and compare those two sets directly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from genforce_core.api import METRICS

from .evaluation import EvaluationSession, MetricSpec, get_detector, parse_metric_name
from .inception import check_mode
from .scores import fid_from_features, inception_score, kernel_inception_distance


def unwrap(model):
    return model.module if hasattr(model, 'module') else model


def generator_of(model):
    """``(generate(z, c), z_dim, c_dim)`` of a genforce GAN (its EMA generator) or of a bare
    generator network."""
    model = unwrap(model)
    net = getattr(model, 'inference_generator', None) or getattr(model, 'generator', None) \
        or model
    if hasattr(model, 'synthesize'):
        def generate(z, c):
            return model.synthesize(z, c)
    else:
        generate = net
    return generate, int(net.z_dim), int(getattr(net, 'c_dim', 0) or 0)


class InceptionMetric(BaseMetric):
    """Common options of :class:`FID`, :class:`KID` and :class:`IS`.

    Args:
        name: Metric name and result key, e.g. ``'fid50k_full'`` (generated count, ``_full``
            = all real images; without it at most as many real images).
        dataset: Real images (path or ImageDataset config); default: the loop's dataset.
        inception: Inception weights file (either format); default
            ``$GENFORCE_INCEPTION_WEIGHTS``, the cache folder, or the download.
        batch_size: Detector batch per process.
        mirror: Add x-flipped real images to the statistics.
        cache_dir: Real-statistics cache folder.
        num_workers: DataLoader workers decoding the real images.
        seed: Latent seed: the same seed gives the same generated images.
        progress: Progress bars on rank 0.
        mode: Whose numbers to reproduce: ``'nvidia'`` (default; the StyleGAN papers),
            ``'pytorch_fid'`` or ``'clean'`` (clean-fid). To report several modes in one
            evaluation, give each metric a ``prefix`` (keys become ``'clean/fid50k_full'``).
        options: ``kid_subsets`` (100), ``kid_subset_size`` (1000), ``is_splits`` (10).
    """

    kind = ''
    default_name = ''
    default_prefix = ''  # keys as named: 'fid50k_full', which save_best refers to

    def __init__(self, name: str | None = None, dataset: Any = None, inception: str | None = None,
                 batch_size: int = 64, mirror: bool = False, cache_dir: str | None = None,
                 num_workers: int = 2, seed: int = 0, progress: bool = True,
                 mode: str = 'nvidia', collect_device: str = 'cpu', prefix: str | None = None,
                 **options):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.spec: MetricSpec = parse_metric_name(name or self.default_name)
        if self.spec.kind != self.kind:
            raise ValueError(f'{type(self).__name__} got the {self.spec.kind.upper()} name '
                             f'{self.spec.name!r}; use type={self.spec.kind.upper()}')
        unknown = set(options) - {'kid_subsets', 'kid_subset_size', 'is_splits'}
        if unknown:
            raise TypeError(f'{type(self).__name__} got unknown options {sorted(unknown)}; '
                            'extra options are kid_subsets, kid_subset_size, is_splits')
        self.dataset = dataset
        self.inception = inception
        self.mode = check_mode(mode)
        self.session_options = dict(batch_size=batch_size, mirror=mirror, cache_dir=cache_dir,
                                    num_workers=num_workers, seed=seed, progress=progress,
                                    **options)

    # -- the recommended path: the metric drives generation ------------------------------
    def evaluate_model(self, model, dataset=None, shared: dict | None = None,
                       device=None) -> dict[str, float]:
        """Generate ``num_gen`` images with ``model`` and compute the metric (call on every
        rank). ``shared`` lets metrics of one evaluation reuse each other's features."""
        generate, z_dim, c_dim = generator_of(model)
        if device is None:
            device = next(unwrap(model).parameters()).device
        real = self.dataset if self.dataset is not None else dataset
        shared = {} if shared is None else shared
        key = (str(self.inception), repr(real), str(device), self.mode,
               tuple(sorted(self.session_options.items())))
        if key not in shared:
            shared[key] = EvaluationSession(get_detector(self.inception, device, self.mode),
                                            real, **self.session_options)
        results = shared[key].compute(self.spec, generate, z_dim, c_dim)
        # As mmengine's evaluate() names them: 'clean/fid50k_full' with prefix='clean'.
        return {f'{self.prefix}/{k}' if self.prefix else k: v for k, v in results.items()}

    # -- fallback under mmengine's plain loops: one fake per real from val_step ----------
    def process(self, data_batch, data_samples) -> None:
        fakes = torch.stack([s['fake_img'] for s in data_samples])
        detector = get_detector(self.inception, fakes.device, self.mode)
        fake_feats, fake_logits = detector(fakes)
        real_feats = detector(torch.stack([s['real_img'] for s in data_samples]))[0] \
            if self.kind != 'is' else fake_feats
        for i in range(len(data_samples)):
            self.results.append((fake_feats[i].cpu().numpy(), fake_logits[i].cpu().numpy(),
                                 real_feats[i].cpu().numpy()))

    def compute_metrics(self, results: list) -> dict[str, float]:
        fake = np.stack([r[0] for r in results])
        logits = np.stack([r[1] for r in results])
        real = np.stack([r[2] for r in results])
        return self._from_features(real, fake, logits)

    def _from_features(self, real, fake, logits) -> dict[str, float]:
        raise NotImplementedError


@METRICS.register_module()
class FID(InceptionMetric):
    """Fréchet Inception Distance (default ``fid50k_full``)."""

    kind = 'fid'
    default_name = 'fid50k_full'

    def _from_features(self, real, fake, logits):
        return {self.spec.name: fid_from_features(real, fake)}


@METRICS.register_module()
class KID(InceptionMetric):
    """Kernel Inception Distance (default ``kid50k_full``; 100 subsets of up to 1000)."""

    kind = 'kid'
    default_name = 'kid50k_full'

    def _from_features(self, real, fake, logits):
        opts = self.session_options
        return {self.spec.name: kernel_inception_distance(
            real, fake, opts.get('kid_subsets', 100), opts.get('kid_subset_size', 1000),
            seed=opts['seed'])}


@METRICS.register_module()
class IS(InceptionMetric):
    """Inception Score (default ``is50k``, 10 splits); also reports ``<name>_std``."""

    kind = 'is'
    default_name = 'is50k'

    def _from_features(self, real, fake, logits):
        mean, std = inception_score(logits, self.session_options.get('is_splits', 10))
        return {self.spec.name: mean, f'{self.spec.name}_std': std}
