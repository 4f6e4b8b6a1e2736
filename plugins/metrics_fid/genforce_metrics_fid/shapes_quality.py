"""Offline quality of a generator trained on the built-in shapes (``builtin:shapesR``).

A small classifier of shape, colour and ground (:mod:`.shapes_classifier`, trained once on the
CPU and cached; no download) judges ``num_gen`` generated images:

* ``shapes_recognised``: the share of images whose three heads are all confident (top softmax
  probability >= ``threshold``, 0.9): one clean circle, square or triangle of a palette colour
  on one of the four grounds.
* ``shapes_coverage``: the share of the 3 x 8 x 4 = 96 (shape, colour, ground) combinations
  found among the recognised images. With 1000 images real data covers all 96 (about 10
  expected hits each); with 300, about 96 % of them. The recognised images count, so a
  generator that is recognised half the time has about half the images to cover with.
* ``shapes_fd``: the Fréchet distance between the classifier's 64-d features of the generated
  images and of 5000 real images drawn at the same resolution (0 for the data itself, up to
  the sampling noise of ``num_gen`` images).

Images larger than 32² (a multiple of it) are area-downsampled for the classifier. In a
distributed run every rank draws and judges all images (the same ones: the numbers agree);
rank 0 trains the classifier if the cache has none while the others wait.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from mmengine.dist import barrier, get_rank, is_distributed

from genforce_core.api import (
    BACKGROUNDS,
    METRICS,
    NUM_COMBINATIONS,
    SHAPE_COLOURS,
    SHAPE_LABEL_DIM,
    shape_combination,
    shape_label,
)

from .generative import GenerativeMetric
from .metrics import generator_of, unwrap
from .scores import MetricError, feature_stats, frechet_distance
from .shapes_classifier import (
    ShapesClassifier,
    image_features,
    load_classifier,
    reference_stats,
)

MIN_IMAGES = 100  # the FD needs more images than feature dimensions


def shapes_quality(classifier: ShapesClassifier, images: torch.Tensor,
                   reference: tuple[np.ndarray, np.ndarray], threshold: float = 0.9
                   ) -> dict[str, float]:
    """``shapes_recognised``, ``shapes_coverage`` and ``shapes_fd`` of ``images``
    ``[N, 3, R, R]`` (uint8 or float in [-1, 1]) against the reference feature statistics
    ``(mu, sigma)``."""
    if len(images) < MIN_IMAGES:
        raise MetricError(f'the shapes metrics need at least {MIN_IMAGES} images, got '
                          f'{len(images)}')
    feats, probs = image_features(classifier, images)
    confident = torch.ones(len(images), dtype=torch.bool)
    for p in probs.values():
        confident &= p.max(dim=1).values >= threshold
    combination = shape_combination(*(probs[head].argmax(1) for head in ('shape', 'colour',
                                                                       'ground')))
    found = torch.unique(combination[confident])
    fd = frechet_distance(*reference, *feature_stats(feats.double().numpy()))
    return {'shapes_recognised': float(confident.float().mean()),
            'shapes_coverage': len(found) / NUM_COMBINATIONS,
            'shapes_fd': max(fd, 0.0)}


def combination_labels(combinations: torch.Tensor) -> torch.Tensor:
    """Built-in labels ``[N, 15]`` (:func:`~genforce_core.api.shape_label`) of combination
    indices ``[N]`` (0-95, :func:`~genforce_core.api.shape_combination`'s numbering)."""
    rest, ground = combinations // len(BACKGROUNDS), combinations % len(BACKGROUNDS)
    shape, colour = rest // len(SHAPE_COLOURS), rest % len(SHAPE_COLOURS)
    factors = zip(shape.tolist(), colour.tolist(), ground.tolist())
    return torch.tensor([shape_label(*f) for f in factors]).reshape(-1, SHAPE_LABEL_DIM)


def check_condition(c_dim: int) -> None:
    """A conditional generator must take the built-in labels (15-d) to be judged here."""
    if c_dim not in (0, SHAPE_LABEL_DIM):
        raise MetricError(f'the shapes metrics judge unconditional generators or ones '
                          f'conditioned on the built-in labels (c_dim {SHAPE_LABEL_DIM}: shape, '
                          f'colour and ground one-hot), got c_dim {c_dim}')


def generate_images(generate, z_dim: int, c_dim: int, num_images: int, device,
                    batch_size: int = 100, seed: int = 0) -> torch.Tensor:
    """``num_images`` uint8 images ``[N, 3, R, R]`` (CPU) from ``generate(z, c)``: latents and,
    for a conditional generator, the built-in labels of combinations drawn uniformly, from
    ``seed``, the generator's own noise too, under a private RNG state (the caller's RNG, e.g. a
    training run's, is left as it was)."""
    check_condition(c_dim)
    latents = torch.Generator().manual_seed(seed)
    device = torch.device(device)
    cuda = [device.index or 0] if device.type == 'cuda' else []
    images = []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for start in range(0, num_images, batch_size):
            n = min(batch_size, num_images - start)
            z = torch.randn(n, z_dim, generator=latents)
            if c_dim:
                c = combination_labels(torch.randint(NUM_COMBINATIONS, (n,), generator=latents))
            else:
                c = torch.zeros(n, 0)
            img = generate(z.to(device), c.to(device))
            images.append((img.float().clamp(-1, 1) * 127.5 + 127.5).round().to(torch.uint8)
                          .cpu())
    return torch.cat(images)


def evaluate_shapes(generate, z_dim: int, c_dim: int = 0, num_gen: int = 1000,
                    device='cpu', threshold: float = 0.9, batch_size: int = 100, seed: int = 0,
                    cache_dir: str | os.PathLike | None = None, progress: bool = True
                    ) -> dict[str, float]:
    """The shapes metrics of ``num_gen`` images of ``generate(z, c)`` (in [-1, 1], on
    ``device``); the classifier and the reference statistics come from ``cache_dir`` (default
    ``$GENFORCE_CACHE_DIR/shapes_classifier``), computed there on first use."""
    images = generate_images(generate, z_dim, c_dim, num_gen, device, batch_size, seed)
    distributed, rank = is_distributed(), get_rank()
    if distributed and rank != 0:
        barrier()  # rank 0 trains (or loads) the classifier first; the others then load it
    classifier = load_classifier(cache_dir, progress and rank == 0)
    reference = reference_stats(classifier, images.shape[-1], cache_dir, progress and rank == 0)
    if distributed and rank == 0:
        barrier()
    return shapes_quality(classifier, images, reference, threshold)


@METRICS.register_module()
class ShapesQuality(GenerativeMetric):
    """Recognised share, coverage and feature FD of a generator of the built-in shapes
    (result keys ``shapes_recognised``, ``shapes_coverage``, ``shapes_fd``).

    Args:
        num_gen: Images to generate (at least 100; 1000 lets real data cover all 96
            combinations).
        threshold: Softmax probability every head must reach for an image to count as
            recognised.
        batch_size: Images per generator call.
        seed: Seed of the latents and the generator's noise (the same seed, the same images).
        cache_dir: Where the classifier and reference features are cached (default
            ``$GENFORCE_CACHE_DIR/shapes_classifier``).
        progress: Say when the classifier is trained (once per cache).
        prefix: Keys become ``'<prefix>/shapes_recognised'``, ... (default: no prefix).
    """

    default_prefix = ''  # keys as named: 'shapes_fd', which save_best can refer to

    def __init__(self, num_gen: int = 1000, threshold: float = 0.9, batch_size: int = 100,
                 seed: int = 0, cache_dir: str | None = None, progress: bool = True,
                 collect_device: str = 'cpu', prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if int(num_gen) < MIN_IMAGES:
            raise MetricError(f'ShapesQuality num_gen={num_gen}: use at least {MIN_IMAGES}')
        if not 0 < threshold < 1:
            raise MetricError(f'ShapesQuality threshold={threshold}: use a probability '
                              'between 0 and 1, e.g. 0.9')
        self.num_gen, self.threshold, self.batch_size = int(num_gen), float(threshold), batch_size
        self.seed, self.cache_dir, self.progress = seed, cache_dir, progress

    def evaluate_model(self, model, dataset=None, shared: dict | None = None,
                       device=None) -> dict[str, float]:
        generate, z_dim, c_dim = generator_of(model)
        if device is None:
            device = next(unwrap(model).parameters()).device
        results = evaluate_shapes(generate, z_dim, c_dim, self.num_gen, device, self.threshold,
                                  self.batch_size, self.seed, self.cache_dir, self.progress)
        return {f'{self.prefix}/{k}' if self.prefix else k: v for k, v in results.items()}
