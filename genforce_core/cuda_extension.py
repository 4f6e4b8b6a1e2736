"""A plugin op's CUDA extension handle (:class:`CudaExtension`): the just-in-time build of
:mod:`genforce_core.ops`, loaded once per process, and a self-check of the kernel against the
op's reference implementation before its first use (:func:`kernel_mismatch`)."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import torch

from .ops import load_extension, op_status, record_unusable, reference_ops

__all__ = ['CudaExtension', 'kernel_mismatch']


@contextlib.contextmanager
def _without_tf32() -> Iterator[None]:
    """Float32 matmuls and convolutions in full precision (TF32, on by default for cuDNN on
    recent GPUs, would put the reference's own error near the check's tolerance)."""
    matmul = torch.backends.cuda.matmul
    saved = matmul.allow_tf32
    matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=False):
            yield
    finally:
        matmul.allow_tf32 = saved


def kernel_mismatch(kernel: Callable[..., torch.Tensor], reference: Callable[..., torch.Tensor],
                    inputs: Sequence[torch.Tensor], tolerance: float = 1e-4) -> str | None:
    """None when ``kernel(*inputs)`` equals ``reference(*inputs)`` and so do their gradients
    with respect to the inputs that require grad (of a fixed weighting of the output), each
    within ``tolerance`` of the reference's largest magnitude; else what differs. For a
    :class:`CudaExtension`'s ``self_check``."""
    leaves = [t.detach().requires_grad_(t.requires_grad) for t in inputs]
    results = []
    for fn in (kernel, reference):
        out = fn(*leaves)
        weight = torch.linspace(-1, 1, out.numel(), device=out.device,
                                dtype=out.dtype).reshape(out.shape)
        wrt = [t for t in leaves if t.requires_grad]
        grads = torch.autograd.grad((out * weight).sum(), wrt, allow_unused=True)
        results.append([out.detach()] + [g if g is not None else torch.zeros_like(t)
                                         for g, t in zip(grads, wrt)])
    names = ['output'] + [f'gradient {i}' for i, t in enumerate(leaves) if t.requires_grad]
    for what, got, ref in zip(names, *results):
        if got.shape != ref.shape:
            return f'{what} has shape {list(got.shape)}, the reference {list(ref.shape)}'
        error = (got.double() - ref.double()).abs().max().item()
        scale = max(ref.double().abs().max().item(), 1e-30)
        if not error <= tolerance * scale:  # also catches NaN
            return f'{what} differs from the reference by {error / scale:.2g} (relative)'
    return None


class CudaExtension:
    """A plugin op's CUDA extension, loaded lazily once per process.

    An op's ``*_cuda.py`` module holds one and exposes its ``is_available`` and ``status``;
    ``module()`` returns the built extension or None (then the op takes its reference path).

    ``self_check``, when given, runs once right after a successful load, before any other
    use: it compares the op through the kernel with its reference (on the GPU, small random
    inputs) and returns None when they agree, else what differs. A failed check (or one that
    raises) discards the kernel for the process: ``status()`` says ``reference (self-check
    failed: ...)``. While it runs, ``module()`` already returns the kernel, so the check can
    call the op's public CUDA function.
    """

    def __init__(self, name: str, sources: Sequence[str | Path],
                 self_check: Callable[[], str | None] | None = None):
        self.name = name
        self.sources = list(sources)
        self.self_check = self_check
        self._module: ModuleType | None = None
        self._loaded = False

    def module(self) -> ModuleType | None:
        if not self._loaded:  # load_extension hashes the sources: keep it off the hot path
            self._module = load_extension(self.name, self.sources)
            self._loaded = True
            if self._module is not None and self.self_check is not None:
                self._run_self_check()
        return self._module

    def _run_self_check(self) -> None:
        try:
            # The first use may come inside no_grad, inference_mode or autocast (AMP): the
            # check differentiates, in the precision it chooses.
            with (reference_ops(False), _without_tf32(), torch.inference_mode(False),
                  torch.enable_grad(), torch.autocast('cuda', enabled=False),
                  torch.autocast('cpu', enabled=False)):
                problem = self.self_check()
        except Exception as exc:  # noqa: BLE001 - a crashing kernel is a failed check
            problem = f'{type(exc).__name__}: {exc}'.splitlines()[0]
        if problem:
            self._module = None
            record_unusable(self.name, f'self-check failed: {problem}')

    def is_available(self) -> bool:
        """True when a CUDA device is present and the extension built (builds it once)."""
        try:
            return torch.cuda.is_available() and self.module() is not None
        except Exception:  # noqa: BLE001 - never raise from the op path
            return False

    def status(self) -> str:
        """'cuda', 'reference (<why>)' or 'not built yet'; cheap, never compiles."""
        return op_status(self.name)
