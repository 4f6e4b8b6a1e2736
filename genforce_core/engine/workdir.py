"""The work dir's checkpoint files: committing a save, cleaning up after a killed one, and
finding the checkpoint to resume from."""
from __future__ import annotations

import glob
import os
import os.path as osp
import re

from ..checkpoint import verify_checksums
from ..errors import CheckpointError


def commit_file(partial: str, final: str) -> None:
    """Flush ``partial`` to disk and rename it onto ``final`` in one atomic step."""
    with open(partial, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(partial, final)


def remove_partial_checkpoints(work_dir: str) -> None:
    """Delete temporary files left by a save that was killed."""
    for path in glob.glob(osp.join(work_dir, '.*.partial')):
        os.remove(path)


CHECKPOINT_NAME = re.compile(r'iter_(\d+)\.pth')


def find_latest_complete_checkpoint(work_dir: str, logger=None) -> str | None:
    """The newest valid ``iter_<N>.pth`` of ``work_dir``, else the file named in
    ``last_checkpoint``. Valid means a complete torch zip archive whose checksums match
    (:func:`verify_checksums`): a file cut short or damaged is skipped with a warning."""
    numbered = [(int(match.group(1)), osp.join(work_dir, name))
                for name in os.listdir(work_dir)
                if (match := CHECKPOINT_NAME.fullmatch(name))] if osp.isdir(work_dir) else []
    candidates = [path for _, path in sorted(numbered, reverse=True)]
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            candidates.append(f.read().strip())
    for path in candidates:
        if not path or not osp.isfile(path):
            continue
        try:
            if verify_checksums(path):
                return path
            problem = 'it is not a complete checkpoint archive'
        except CheckpointError as err:
            problem = str(err)
        if logger is not None:
            logger.warning(f'skipping {path} for resume: {problem}')
    return None
