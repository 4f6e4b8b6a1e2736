"""A deterministic, infinite, resumable sampler for iteration-based GAN training."""
from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler

from genforce_core.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(Sampler[int]):
    """An endless index stream that every rank can resume at any position.

    Epoch ``e`` is ``torch.randperm(n)`` drawn from a generator seeded with ``seed + e``
    (``arange(n)`` without shuffling); the global stream is the concatenation of the epochs,
    and rank ``r`` of ``w`` takes global positions ``r, r + w, r + 2w, ...``. ``position``
    counts the indices this rank has yielded; :meth:`set_position` (or ``load_state_dict``)
    makes the next index the ``n``-th of this rank's stream. Only one epoch is held in memory.

    With DataLoader workers the loader draws indices ahead of training, so on resume pass the
    number of samples this rank actually consumed (iterations x per-rank batch size) to
    :meth:`set_position` rather than the ``position`` seen at save time.
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: int | None = None,
                 rank: int | None = None, world_size: int | None = None):
        from mmengine.dist import get_dist_info, sync_random_seed

        dist_rank, dist_world = get_dist_info()
        self.rank = dist_rank if rank is None else int(rank)
        self.world_size = dist_world if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank {self.rank} is outside world size {self.world_size}')
        self.size = len(dataset)
        if self.size <= 0:
            raise ValueError('ResumableInfiniteSampler needs a non-empty dataset')
        self.shuffle = bool(shuffle)
        self.seed = int(sync_random_seed() if seed is None else seed)
        self.position = 0

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """The global order of epoch ``epoch`` (a permutation of ``range(len(dataset))``)."""
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.size, generator=generator)

    def set_position(self, n: int) -> None:
        """Make the next yielded index the ``n``-th (0-based) of this rank's stream."""
        if n < 0:
            raise ValueError(f'position must be >= 0, got {n}')
        self.position = int(n)

    def __iter__(self) -> Iterator[int]:
        cached_epoch, order = -1, None
        while True:
            epoch, offset = divmod(self.rank + self.position * self.world_size, self.size)
            if epoch != cached_epoch:
                cached_epoch, order = epoch, self.epoch_indices(epoch).tolist()
            self.position += 1
            yield order[offset]

    def __len__(self) -> int:
        """The dataset size (one epoch), as mmengine's InfiniteSampler reports."""
        return self.size

    def set_epoch(self, epoch: int) -> None:
        """No-op: the stream is infinite; epochs follow from the position."""

    def state_dict(self) -> dict:
        return dict(seed=self.seed, shuffle=self.shuffle, position=self.position,
                    world_size=self.world_size, size=self.size)

    def load_state_dict(self, state: dict) -> None:
        """Restore seed, shuffling and position (a different world size keeps the position)."""
        self.seed = int(state['seed'])
        self.shuffle = bool(state.get('shuffle', self.shuffle))
        self.set_position(int(state['position']))
