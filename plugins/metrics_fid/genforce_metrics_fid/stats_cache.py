"""Real-image features, computed once and cached on disk under a key of everything they
depend on: the dataset's content (entry names with each file's size and modification time,
or the archive's), resolution and channels, the detector (a hash of its parameters), its
input mode (``nvidia`` / ``pytorch_fid`` / ``clean``), the mirror setting and the number of
images.

All ranks extract their share of a missing entry; rank 0 writes it (temp file + rename) and
the others wait at a barrier. Whether the entry exists is decided by rank 0 and broadcast, so
ranks never disagree about which path to take.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
from pathlib import Path

import numpy as np
import torch
from mmengine.dist import barrier, broadcast_object_list, get_dist_info

from genforce_core.api import DATASETS, ImageDataset

from .features import extract_dataset
from .scores import feature_stats

CACHE_VERSION = 1


def default_cache_dir() -> Path:
    root = os.environ.get('GENFORCE_CACHE_DIR') or osp.join(osp.expanduser('~'), '.cache',
                                                            'genforce')
    return Path(root) / 'fid_stats'


def build_dataset(spec, *, mirror: bool = False, use_labels: bool = False) -> ImageDataset:
    """An :class:`ImageDataset` from a path, a config dict or a dataset (returned as is)."""
    if isinstance(spec, ImageDataset):
        if spec.xflip == mirror and (spec.has_labels or not use_labels):
            return spec
        return ImageDataset(spec.path, resolution=spec.resolution, xflip=mirror,
                            use_labels=use_labels, channels=spec.num_channels)
    if isinstance(spec, (str, os.PathLike)):
        return ImageDataset(spec, xflip=mirror, use_labels=use_labels)
    cfg = dict(spec)
    cfg.setdefault('type', 'ImageDataset')
    cfg['xflip'] = mirror
    cfg.setdefault('use_labels', use_labels)
    for key in ('pipeline', 'serialize_data', 'lazy_init', 'test_mode'):
        cfg.pop(key, None)
    return DATASETS.build(cfg)


def content_fingerprint(dataset: ImageDataset) -> str:
    """A hash that changes when an image is added, removed, rewritten or touched."""
    reader = dataset.reader
    digest = hashlib.sha256()
    digest.update(json.dumps([reader.format, list(dataset.names)]).encode())
    root = Path(reader.path)
    if root.is_dir() and reader.format == 'folder':
        for name in dataset.names:
            st = os.stat(root / name)
            digest.update(f'{name}:{st.st_size}:{st.st_mtime_ns};'.encode())
    else:  # zip file or LMDB directory: the storage files themselves
        files = [root] if root.is_file() else sorted(p for p in root.iterdir() if p.is_file())
        for path in files:
            st = path.stat()
            digest.update(f'{path.name}:{st.st_size}:{st.st_mtime_ns};'.encode())
    return digest.hexdigest()


def detector_id(detector: torch.nn.Module) -> str:
    """sha256 of the detector's parameters and input size (memoized on the module)."""
    cached = getattr(detector, '_genforce_detector_id', None)
    if cached:
        return cached
    digest = hashlib.sha256(str(getattr(detector, 'input_size', '')).encode())
    for name, tensor in detector.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    detector._genforce_detector_id = digest.hexdigest()
    return detector._genforce_detector_id


def detector_mode(detector: torch.nn.Module) -> str | None:
    """The Inception input mode of ``detector`` (None for detectors without modes)."""
    return getattr(detector, 'mode', None)


def cache_key(dataset: ImageDataset, detector: torch.nn.Module, num_items: int) -> str:
    fields = dict(version=CACHE_VERSION, content=content_fingerprint(dataset),
                  resolution=dataset.resolution, channels=dataset.num_channels,
                  detector=detector_id(detector), mode=detector_mode(detector),
                  mirror=bool(dataset.xflip), num_items=num_items)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def cache_path(dataset: ImageDataset, detector: torch.nn.Module, num_items: int,
               cache_dir: str | os.PathLike | None = None) -> Path:
    stem = Path(dataset.path.rstrip('/\\')).name.replace('.', '_') or 'dataset'
    key = cache_key(dataset, detector, num_items)
    mode = detector_mode(detector)
    return Path(cache_dir or default_cache_dir()) / (
        f'{stem}-{dataset.resolution}px-{num_items}-{mode + "-" if mode else ""}{key[:16]}.npz')


def real_features(detector: torch.nn.Module, dataset, *, max_items: int | None = None,
                  mirror: bool = False, batch_size: int = 64, num_workers: int = 0,
                  cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                  progress: bool = True) -> dict[str, np.ndarray]:
    """``dict(feats=[N, 2048] float32, mu, sigma (float64), path=...)`` of the dataset's
    first ``max_items`` images (all if None), from the cache when it holds them."""
    dataset = build_dataset(dataset, mirror=mirror)
    num_items = len(dataset) if max_items is None else min(max_items, len(dataset))
    path = cache_path(dataset, detector, num_items, cache_dir)
    rank, _ = get_dist_info()
    exists = [use_cache and path.is_file() if rank == 0 else None]
    broadcast_object_list(exists, src=0)
    if exists[0]:
        with np.load(path) as data:
            return dict(feats=data['feats'], mu=data['mu'], sigma=data['sigma'], path=str(path))
    feats = extract_dataset(detector, dataset, num_items=num_items, batch_size=batch_size,
                            num_workers=num_workers, progress=progress,
                            desc=f'real features {Path(dataset.path).name}').numpy()
    mu, sigma = feature_stats(feats)
    if use_cache and rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp.npz')
        np.savez(tmp, feats=feats, mu=mu, sigma=sigma)
        os.replace(tmp, path)
    barrier()
    return dict(feats=feats, mu=mu, sigma=sigma, path=str(path))
