"""Inception features of a dataset or of a generator, split over ranks and gathered in order.

Work is cut into global batches of ``batch_size``; rank ``r`` of ``W`` takes batches
``b = r, r + W, ...``. Batch ``b`` always holds the same images (dataset items
``b * batch_size ...``, or latents drawn from a generator seeded by ``(seed, b)``), so the gathered
features, put back in batch order, are the same for any number of processes.

Overlap: while the detector runs on batch ``b``, the next batch is already being made: decoded
on DataLoader workers for datasets, always; generated on a producer thread (on CUDA in its own
stream, joined to the detector's stream with an event) for generators, only when asked
(``overlap=True``): on one H200 it was slower than one thread (StyleGAN2 256x256, 2048 images,
batch 64: 4.66 s against 3.78 s, generation alone 2.99 s; both threads launch kernels and
contend for the interpreter). Nothing calls ``.cpu()`` per batch: features stay on the device
until the end, so the GPU never waits on the host.
"""
from __future__ import annotations

import math
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.dist import get_dist_info
from torch.utils.data import DataLoader

from genforce_core.api import to_uint8

ImageBatch = torch.Tensor  # uint8 [N, C, H, W]


def my_batches(num_items: int, batch_size: int) -> list[tuple[int, int, int]]:
    """``(b, start, stop)`` of this rank's global batches."""
    rank, world = get_dist_info()
    count = math.ceil(num_items / batch_size)
    return [(b, b * batch_size, min(num_items, (b + 1) * batch_size))
            for b in range(rank, count, world)]


def gather_in_order(local: torch.Tensor, num_items: int, batch_size: int) -> torch.Tensor:
    """Concatenate every rank's batch rows (``local``: this rank's batches in order) into
    the global batch order. Returns all ``num_items`` rows on every rank."""
    rank, world = get_dist_info()
    if world == 1:
        return local
    count = math.ceil(num_items / batch_size)
    most = math.ceil(count / world) * batch_size
    padded = local.new_zeros((most, *local.shape[1:]))
    padded[:len(local)] = local
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch_dist.all_gather(parts, padded)
    rows = []
    for b in range(count):
        j = b // world
        size = min(num_items, (b + 1) * batch_size) - b * batch_size
        rows.append(parts[b % world][j * batch_size: j * batch_size + size])
    return torch.cat(rows)


def _prefetch(make: Callable[[Any], Any], items: list, device: torch.device,
              enabled: bool) -> Iterator:
    """``make(item)`` for each item, one item ahead on a producer thread when ``enabled``."""
    if not enabled:
        for item in items:
            yield make(item)
        return
    cuda = device.type == 'cuda'
    side = torch.cuda.Stream(device) if cuda else None
    out: queue.Queue = queue.Queue(maxsize=2)

    def produce():
        try:
            for item in items:
                if cuda:
                    with torch.cuda.device(device), torch.cuda.stream(side):
                        result = make(item)
                        event = torch.cuda.Event()
                        event.record(side)
                    out.put((result, event))
                else:
                    out.put((make(item), None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            out.put((exc, 'error'))
        out.put(None)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    while (entry := out.get()) is not None:
        result, event = entry
        if event == 'error':
            raise result
        if event is not None:
            torch.cuda.current_stream(device).wait_event(event)
            if torch.is_tensor(result):
                result.record_stream(torch.cuda.current_stream(device))
        yield result
    thread.join()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm
    rank, world = get_dist_info()
    return tqdm(total=total, desc=desc, unit='img', disable=not enabled or rank != 0,
                dynamic_ncols=True, leave=False)


@torch.no_grad()
def extract_dataset(detector: torch.nn.Module, dataset, *, num_items: int | None = None,
                    batch_size: int = 64, num_workers: int = 0, progress: bool = True,
                    desc: str = 'real features') -> torch.Tensor:
    """Features ``[N, 2048]`` (float32, CPU) of the first ``num_items`` dataset images."""
    num_items = len(dataset) if num_items is None else min(num_items, len(dataset))
    device = next(detector.parameters()).device
    batches = my_batches(num_items, batch_size)
    loader = DataLoader(dataset, batch_sampler=[list(range(s, e)) for _, s, e in batches],
                        num_workers=num_workers, pin_memory=device.type == 'cuda')
    feats = []
    with _progress(num_items, desc, progress) as bar:
        for data in loader:
            img = data['img'].to(device, non_blocking=True)
            feats.append(detector(img)[0])
            bar.update(len(img) * get_dist_info()[1])
    local = torch.cat(feats) if feats else torch.zeros(0, 2048, device=device)
    return gather_in_order(local, num_items, batch_size).cpu()


def latent_generator(seed: int, batch: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) << 20) + int(batch))


@torch.no_grad()
def extract_generator(detector: torch.nn.Module, generate: Callable, z_dim: int,
                      num_items: int, *, batch_size: int = 64, labels: np.ndarray | None = None,
                      c_dim: int = 0, seed: int = 0, overlap: bool = False,
                      progress: bool = True, desc: str = 'generated features'
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Features ``[N, 2048]`` and logits ``[N, 1008]`` of ``num_items`` generated images.

    ``generate(z, c)`` returns images in [-1, 1]. Conditions ``c`` are drawn from ``labels``
    (the dataset's label rows, as NVIDIA does) or, without labels, as random one-hot vectors
    of ``c_dim`` classes.
    """
    device = next(detector.parameters()).device
    batches = my_batches(num_items, batch_size)

    def make(batch):
        with torch.no_grad():  # grad mode is per thread: the producer thread needs its own
            return _generate_batch(*batch)

    def _generate_batch(b, start, stop):
        rng = latent_generator(seed, b)
        z = torch.randn(stop - start, z_dim, generator=rng)
        if labels is not None and len(labels):
            c = torch.from_numpy(labels[torch.randint(len(labels), (stop - start,),
                                                      generator=rng).numpy()])
        elif c_dim:
            c = torch.nn.functional.one_hot(
                torch.randint(c_dim, (stop - start,), generator=rng), c_dim).float()
        else:
            c = torch.zeros(stop - start, 0)
        return to_uint8(generate(z.to(device), c.to(device)))

    feats, logits = [], []
    with _progress(num_items, desc, progress) as bar:
        for img in _prefetch(make, batches, device, overlap):
            f, lg = detector(img)
            feats.append(f)
            logits.append(lg)
            bar.update(len(img) * get_dist_info()[1])
    if not feats:
        feats, logits = [torch.zeros(0, 2048, device=device)], [torch.zeros(0, 1008,
                                                                            device=device)]
    local = torch.cat([torch.cat(feats), torch.cat(logits)], dim=1)
    both = gather_in_order(local, num_items, batch_size).cpu()
    return both[:, :2048].contiguous(), both[:, 2048:].contiguous()
