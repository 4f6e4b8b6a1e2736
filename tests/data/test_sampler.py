"""ResumableInfiniteSampler: deterministic epochs, rank partitioning and exact resumption."""
from __future__ import annotations

import itertools

import pytest
import torch

from genforce_core.data import ResumableInfiniteSampler
from genforce_core.registry import DATA_SAMPLERS

N = 10


def take(sampler, k: int) -> list[int]:
    return list(itertools.islice(iter(sampler), k))


def global_stream(seed: int, epochs: int, shuffle: bool = True) -> list[int]:
    out = []
    for e in range(epochs):
        order = (torch.randperm(N, generator=torch.Generator().manual_seed(seed + e)) if shuffle
                 else torch.arange(N))
        out += order.tolist()
    return out


def test_stream_is_concatenated_epochs():
    sampler = ResumableInfiniteSampler(range(N), seed=7, rank=0, world_size=1)
    assert take(sampler, 35) == global_stream(7, 4)[:35]
    assert sampler.position == 35
    plain = ResumableInfiniteSampler(range(N), shuffle=False, seed=7, rank=0, world_size=1)
    assert take(plain, 25) == list(range(N)) * 2 + list(range(5))


@pytest.mark.parametrize('world', [2, 3, 12])
def test_ranks_partition_the_stream(world):
    streams = [take(ResumableInfiniteSampler(range(N), seed=3, rank=r, world_size=world), 20)
               for r in range(world)]
    interleaved = [streams[r][k] for k in range(20) for r in range(world)]
    assert interleaved == global_stream(3, 20 * world // N + 1)[:20 * world]


@pytest.mark.parametrize('k', [0, 1, 9, 10, 23])
def test_set_position_equals_skipping(k):
    full = take(ResumableInfiniteSampler(range(N), seed=1, rank=1, world_size=2), k + 15)
    resumed = ResumableInfiniteSampler(range(N), seed=1, rank=1, world_size=2)
    resumed.set_position(k)
    assert take(resumed, 15) == full[k:]


def test_state_dict_round_trip_and_determinism():
    a = ResumableInfiniteSampler(range(N), seed=5, rank=0, world_size=1)
    first = take(a, 13)
    b = DATA_SAMPLERS.build(dict(type='ResumableInfiniteSampler', dataset=range(N), seed=0),
                            default_args=dict(rank=0, world_size=1))
    b.load_state_dict(a.state_dict())
    assert take(b, 7) == take(a, 7)
    assert take(ResumableInfiniteSampler(range(N), seed=5, rank=0, world_size=1), 13) == first
    assert len(a) == N


def test_default_seed_and_dist_info():
    sampler = ResumableInfiniteSampler(range(N))  # not distributed: rank 0 of 1
    assert (sampler.rank, sampler.world_size) == (0, 1) and isinstance(sampler.seed, int)


def test_one_epoch_at_a_time(monkeypatch):
    calls = []
    sampler = ResumableInfiniteSampler(range(N), seed=0, rank=0, world_size=1)
    original = sampler.epoch_indices
    monkeypatch.setattr(sampler, 'epoch_indices', lambda e: calls.append(e) or original(e))
    take(sampler, 25)
    assert calls == [0, 1, 2]
