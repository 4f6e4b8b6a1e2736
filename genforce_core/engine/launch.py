"""Process-group set-up for ``--launcher pytorch|slurm`` that also works without GPUs.

mmengine's own ``init_dist`` always binds a CUDA device (and divides by the GPU count under
slurm), so CPU-only runs — our tests, laptops — could not use the launchers. We initialise the
group ourselves (NCCL with GPUs, gloo without) before the Runner, which then skips it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta

import torch
import torch.distributed as torch_dist

from ..errors import UsageError


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[01-04],gpu7`` → ``node01``)."""
    if shutil.which('scontrol'):
        out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist], check=True,
                             capture_output=True, text=True).stdout.split()
        if out:
            return out[0]
    match = re.match(r'([^,\[]+)(?:\[([^\]]+)\])?', nodelist)
    if not match:
        raise ValueError(f'cannot parse SLURM_NODELIST={nodelist!r}')
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    first = ranges.split(',')[0].split('-')[0]
    return prefix + first


def init_distributed(launcher: str, backend: str | None = None, port: int | None = None,
                     timeout_s: int = 1800) -> None:
    """Join the process group described by the launcher's environment variables."""
    if launcher == 'none' or (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    if launcher == 'slurm':
        missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
                   if k not in os.environ]
        if missing:
            raise UsageError(f'--launcher slurm needs the environment variables '
                             f'{", ".join(missing)}, which srun sets: start through '
                             'tools/slurm_train.sh')
        os.environ['RANK'] = os.environ['SLURM_PROCID']
        os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
        os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')
        os.environ.setdefault('MASTER_ADDR', first_slurm_host(os.environ['SLURM_NODELIST']))
        os.environ.setdefault('MASTER_PORT', str(port or 29500))
    elif launcher != 'pytorch':
        raise ValueError(f"unknown launcher {launcher!r}: use 'none', 'pytorch' or 'slurm'")
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise UsageError(f'--launcher {launcher} needs the environment variables '
                         f'{", ".join(missing)}, which its launcher sets: start through '
                         'tools/dist_train.sh (torchrun), tools/slurm_train.sh (srun) or '
                         '`genforce train --gpus N`')
    local_rank = int(os.environ.setdefault('LOCAL_RANK', '0'))
    if backend is None:
        backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl':
        torch.cuda.set_device(local_rank)
    torch_dist.init_process_group(backend=backend, init_method='env://',
                                  timeout=timedelta(seconds=timeout_s))


def finish_distributed() -> None:
    """Leave the process group cleanly: wait for every rank, then tear the group down.

    Exiting with a live gloo group lets its worker threads be destroyed while the interpreter
    shuts down, which aborts the process now and then ("terminate called without an active
    exception") after all the work was done.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
