"""Improved precision and recall (Kynkäänniemi et al., 2019), as StyleGAN2-ADA computes
``pr50k3_full``.

Each set of VGG16 features spans a manifold: the union of balls around its points whose radius
is the distance to the point's ``k``-th nearest neighbour (the ``k + 1``-th smallest distance
to the set, the point itself included, as NVIDIA's ``kthvalue(k + 1)``). Precision is the
fraction of generated features inside the real manifold (distance to some real point ``<=``
that point's radius); recall the fraction of real features inside the generated manifold.

The distance matrix is never held whole: rows go in batches of ``row_batch_size`` and, inside
a batch, columns in chunks of ``col_batch_size`` (a running ``k + 1`` smallest per row). In a
distributed run each rank takes every ``world``-th row batch and the per-row results are
gathered in order, so every rank returns the same numbers as a single process.

Distances are compared squared, in the features' dtype (float32; NVIDIA's code casts features
to float16, which only moves near-ties).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, get_dist_info
from torch.utils.data import DataLoader

from genforce_core.api import to_uint8

from .features import gather_in_order, latent_generator, my_batches
from .scores import MetricError


def squared_distances(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``|r - c|^2`` for every pair, ``[len(rows), len(cols)]``, clamped at 0."""
    dist = rows.square().sum(1, keepdim=True) + cols.square().sum(1)[None] - 2 * rows @ cols.T
    return dist.clamp_min_(0)


def _column_chunks(num: int, size: int) -> list[slice]:
    return [slice(start, min(num, start + size)) for start in range(0, num, size)]


def manifold_radii(manifold: torch.Tensor, k: int = 3, row_batch_size: int = 10000,
                   col_batch_size: int = 10000) -> torch.Tensor:
    """Squared ``k``-NN radius of every point of ``manifold`` ``[N, D]`` → ``[N]``."""
    num = len(manifold)
    if num < k + 1:
        raise MetricError(f'precision/recall with k={k} needs at least {k + 1} feature vectors '
                          f'per set, got {num}')
    local = []
    for _, start, stop in my_batches(num, row_batch_size):
        best = None
        for cols in _column_chunks(num, col_batch_size):
            dist = squared_distances(manifold[start:stop], manifold[cols])
            if best is not None:
                dist = torch.cat([best, dist], dim=1)
            best = dist.topk(min(k + 1, dist.shape[1]), dim=1, largest=False).values
        local.append(best[:, k])
    local_t = torch.cat(local) if local else manifold.new_zeros(0)
    return gather_in_order(local_t[:, None], num, row_batch_size)[:, 0]


def inside_manifold(probes: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor,
                    row_batch_size: int = 10000, col_batch_size: int = 10000) -> torch.Tensor:
    """For each probe ``[M, D]``: is it within the radius of some manifold point? → bool
    ``[M]``."""
    local = []
    for _, start, stop in my_batches(len(probes), row_batch_size):
        hit = torch.zeros(stop - start, dtype=torch.bool, device=probes.device)
        for cols in _column_chunks(len(manifold), col_batch_size):
            dist = squared_distances(probes[start:stop], manifold[cols])
            hit |= (dist <= radii[cols][None]).any(dim=1)
        local.append(hit)
    local_t = torch.cat(local) if local else probes.new_zeros(0, dtype=torch.bool)
    return gather_in_order(local_t[:, None].to(probes.dtype), len(probes),
                           row_batch_size)[:, 0] > 0.5


def precision_recall(real: torch.Tensor, gen: torch.Tensor, k: int = 3,
                     row_batch_size: int = 10000, col_batch_size: int = 10000
                     ) -> tuple[float, float]:
    """``(precision, recall)`` of generated features ``gen`` against ``real`` (both
    ``[N, D]``, on the device where the distances are computed). Call on every rank of a
    distributed run: each computes its share of rows."""
    real, gen = torch.as_tensor(real), torch.as_tensor(gen)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise MetricError(f'precision/recall needs two feature sets [N, D] of one width, got '
                          f'{tuple(real.shape)} and {tuple(gen.shape)}')
    batches = dict(row_batch_size=row_batch_size, col_batch_size=col_batch_size)
    results = []
    for manifold, probes in ((real, gen), (gen, real)):
        radii = manifold_radii(manifold, k, **batches)
        inside = inside_manifold(probes, manifold, radii, **batches)
        results.append(int(inside.sum()) / len(inside))
    return results[0], results[1]


# ----------------------------------------------------------------- features of the images
def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit='img', disable=not enabled or get_dist_info()[0],
                dynamic_ncols=True, leave=False)


@torch.no_grad()
def dataset_features(detector, dataset, num_items: int, *, batch_size: int = 64,
                     num_workers: int = 0, progress: bool = True) -> torch.Tensor:
    """Detector features ``[N, D]`` (float32, CPU) of the first ``num_items`` dataset images,
    split over ranks and gathered in order."""
    device = next(detector.parameters()).device
    batches = my_batches(num_items, batch_size)
    loader = DataLoader(dataset, batch_sampler=[list(range(s, e)) for _, s, e in batches],
                        num_workers=num_workers, pin_memory=device.type == 'cuda')
    feats = []
    with _progress(num_items, 'real VGG16 features', progress) as bar:
        for data in loader:
            feats.append(detector(data['img'].to(device, non_blocking=True)))
            bar.update(len(feats[-1]) * get_dist_info()[1])
    dim = detector.fc_dim
    local = torch.cat(feats) if feats else torch.zeros(0, dim, device=device)
    return gather_in_order(local, num_items, batch_size).cpu()


def draw_conditions(rng: torch.Generator, count: int, labels: np.ndarray | None,
                    c_dim: int) -> torch.Tensor:
    """Conditions of ``count`` generated images: rows of the dataset's ``labels`` (as NVIDIA
    draws them), or random one-hot vectors of ``c_dim`` classes, or ``[count, 0]``."""
    if labels is not None and len(labels):
        return torch.from_numpy(labels[torch.randint(len(labels), (count,),
                                                     generator=rng).numpy()]).float()
    if c_dim:
        return torch.nn.functional.one_hot(torch.randint(c_dim, (count,), generator=rng),
                                           c_dim).float()
    return torch.zeros(count, 0)


@torch.no_grad()
def generator_features(detector, generate, z_dim: int, num_items: int, *,
                       batch_size: int = 64, labels: np.ndarray | None = None,
                       c_dim: int = 0, seed: int = 0, progress: bool = True) -> torch.Tensor:
    """Detector features ``[N, D]`` (float32, CPU) of ``num_items`` images of
    ``generate(z, c)`` (in [-1, 1]); batch ``b`` draws its latents from ``(seed, b)``, the
    same images FID of the same seed and batch size sees."""
    device = next(detector.parameters()).device
    feats = []
    with _progress(num_items, 'generated VGG16 features', progress) as bar:
        for b, start, stop in my_batches(num_items, batch_size):
            rng = latent_generator(seed, b)
            z = torch.randn(stop - start, z_dim, generator=rng)
            c = draw_conditions(rng, stop - start, labels, c_dim)
            feats.append(detector(to_uint8(generate(z.to(device), c.to(device)))))
            bar.update((stop - start) * get_dist_info()[1])
    local = torch.cat(feats) if feats else torch.zeros(0, detector.fc_dim, device=device)
    return gather_in_order(local, num_items, batch_size).cpu()


def cached_dataset_features(detector, dataset, num_items: int, *, cache_dir=None,
                            use_cache: bool = True, **kwargs) -> torch.Tensor:
    """:func:`dataset_features`, stored as ``.npy`` in the statistics cache under a key of
    the dataset content, detector parameters, mirror setting and count (rank 0 decides whether
    the entry exists and writes it)."""
    from .stats_cache import cache_path
    path = cache_path(dataset, detector, num_items, cache_dir)
    path = path.with_name(path.stem + '-vgg16.npy')
    exists = [use_cache and path.is_file() if get_dist_info()[0] == 0 else None]
    broadcast_object_list(exists, src=0)
    if exists[0]:
        return torch.from_numpy(np.load(path))
    feats = dataset_features(detector, dataset, num_items, **kwargs)
    if use_cache and get_dist_info()[0] == 0:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp.npy')
        np.save(tmp, feats.numpy())
        os.replace(tmp, path)
    barrier()
    return feats
