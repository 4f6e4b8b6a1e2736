"""``keep_freed_memory``: glibc's mmap/trim thresholds raised for CPU training, nothing
elsewhere; ``genforce train`` applies it only without CUDA."""
from __future__ import annotations

import ctypes
import platform

import pytest

from genforce_core.cli import train as train_cli
from genforce_core.engine import cpu_memory

GLIBC_LINUX = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'


class _Mallopt:
    def __init__(self):
        self.calls = []
        self.argtypes = None

    def __call__(self, param, value):
        self.calls.append((param, value))
        return 1


@pytest.mark.skipif(not GLIBC_LINUX, reason='glibc only')
def test_sets_both_thresholds_mmap_first(monkeypatch):
    mallopt = _Mallopt()
    monkeypatch.setattr(ctypes, 'CDLL', lambda name: type('Libc', (), {'mallopt': mallopt}))
    assert cpu_memory.keep_freed_memory() is True
    assert mallopt.calls == [(-3, 32 * 2 ** 20), (-1, 2 ** 30)]


@pytest.mark.skipif(not GLIBC_LINUX, reason='glibc only')
def test_really_calls_glibc():
    assert cpu_memory.keep_freed_memory() is True  # mallopt returns 1 on success


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, 'libc_ver', lambda: ('musl', '1.2'))
    monkeypatch.setattr(ctypes, 'CDLL', lambda name: pytest.fail('libc opened'))
    assert cpu_memory.keep_freed_memory() is False


@pytest.mark.parametrize('cuda', [False, True])
def test_train_applies_it_only_without_cuda(monkeypatch, cuda):
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(cpu_memory, 'keep_freed_memory', lambda: calls.append(1) or True)
    train_cli.keep_freed_memory_on_cpu()
    assert calls == ([] if cuda else [1])
