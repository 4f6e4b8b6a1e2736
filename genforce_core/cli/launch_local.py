"""``genforce train --gpus N``: N local processes through torch's elastic agent (what torchrun
runs), for people who do not want ``tools/dist_train.sh``.

Each process runs ``worker(args)`` with the ``RANK``/``WORLD_SIZE``/``MASTER_*`` variables
torchrun sets, so ``--launcher pytorch`` joins them (NCCL with GPUs, gloo without). A user
error in a process is its usual one-line message; the launcher then adds which ranks failed.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator

import torch

from ..errors import UsageError

Worker = Callable[[argparse.Namespace], int]


def check_gpu_count(nproc: int) -> None:
    """``--gpus N`` must not ask for more GPUs than are visible (any count runs on CPU)."""
    if not torch.cuda.is_available():
        print(f'genforce train: no CUDA GPU is visible: starting {nproc} CPU processes (gloo)',
              file=sys.stderr)
        return
    count = torch.cuda.device_count()
    if nproc > count:
        raise UsageError(f'--gpus {nproc}: only {count} CUDA GPU(s) are visible '
                         f'(CUDA_VISIBLE_DEVICES={os.environ.get("CUDA_VISIBLE_DEVICES")}); '
                         f'use --gpus {count} or fewer')


def launch_local(nproc: int, worker: Worker, args: argparse.Namespace) -> int:
    """Run ``worker(args)`` in ``nproc`` local processes; the largest exit code of any."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    check_gpu_count(nproc)
    for threads in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):  # torchrun's and mmengine's default
        os.environ.setdefault(threads, '1')  # for several processes (and mmengine's warning)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=f'genforce-{uuid.uuid4().hex[:8]}', rdzv_backend='c10d',
                          rdzv_endpoint='localhost:0',  # torchrun --standalone: a free port
                          max_restarts=0, start_method='spawn')
    try:
        with quiet_agent(verbose=bool(getattr(args, 'verbose', False))):
            elastic_launch(config, _run_worker)(worker, args)
    except SignalException as exc:  # Ctrl-C or a kill: the agent has stopped the processes
        print(f'genforce train: stopped by {exc.sigval.name}', file=sys.stderr)
        return 128 + int(exc.sigval)
    except ChildFailedError as exc:
        failures = sorted(exc.failures.items())
        codes = ', '.join(f'rank {rank}: exit code {failure.exitcode}'
                          for rank, failure in failures)
        print(f'genforce train: error: {len(failures)} of {nproc} processes failed ({codes}); '
              'their messages are above', file=sys.stderr)
        # A negative code is a signal (the agent stops the others when one fails).
        return max((failure.exitcode for _, failure in failures if failure.exitcode > 0),
                   default=1)
    return 0


def _run_worker(worker: Worker, args: argparse.Namespace) -> None:
    """The body of each process: user errors print one line and set the exit code, as in
    :func:`genforce_core.cli.main.main`; anything else is a crash with its traceback."""
    from . import main as cli

    rank = os.environ.get('RANK', '?')
    # mmengine switches dataloader workers back to fork and warns that we were spawned.
    warnings.filterwarnings('ignore', message='Multi-processing start method')
    try:
        code = worker(args)
    except cli.USER_FACING_ERRORS as exc:
        if getattr(args, 'verbose', False):
            traceback.print_exc()
        print(f'genforce train (rank {rank}): error: {exc}', file=sys.stderr)
        code = 2 if isinstance(exc, getattr(cli, 'USAGE_ERRORS', UsageError)) else 1
    if code:
        sys.exit(code)


@contextlib.contextmanager
def quiet_agent(verbose: bool) -> Iterator[None]:
    """Hide the elastic agent's log lines (rendezvous, "closing signal", failure tables):
    the processes' own messages say what went wrong. ``-v`` shows them."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.startswith(('torch.distributed', 'torch.multiprocessing'))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
