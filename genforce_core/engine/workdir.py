"""The work dir's checkpoint files: committing a save, cleaning up after a killed one, and
finding the checkpoint to resume from."""
from __future__ import annotations

import glob
import os
import os.path as osp
import re
import shutil

from ..checkpoint import verify_checksums
from ..errors import CheckpointError, UsageError


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
# What a run leaves in its work dir that a new run must not mix with.
RUN_FILES = re.compile(r'(iter_\d+|epoch_\d+|best_.*)\.pth|last_checkpoint|samples')


def _pointed_checkpoint(work_dir: str, logger=None) -> str | None:
    """The checkpoint ``last_checkpoint`` names, looked up by file name in ``work_dir`` (the
    pointer holds an absolute path, which is stale once a work dir is moved or copied)."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        name = osp.basename(f.read().strip())
    if CHECKPOINT_NAME.fullmatch(name):
        return osp.join(work_dir, name)
    if logger is not None:
        logger.warning(f'ignoring {pointer}: {name!r} is not a checkpoint name (iter_<N>.pth)')
    return None


def find_latest_complete_checkpoint(work_dir: str, logger=None) -> str | None:
    """The checkpoint to resume from: the one ``last_checkpoint`` names, else the newest
    ``iter_<N>.pth``, skipping (with a warning) any that is not valid: a complete torch zip
    archive whose checksums match (:func:`verify_checksums`)."""
    if not osp.isdir(work_dir):
        return None
    numbered = sorted(((int(match.group(1)), osp.join(work_dir, name))
                       for name in os.listdir(work_dir)
                       if (match := CHECKPOINT_NAME.fullmatch(name))), reverse=True)
    pointed = _pointed_checkpoint(work_dir, logger)
    candidates = [pointed] if pointed else []
    candidates += [path for _, path in numbered if path != pointed]
    for path in candidates:
        if not osp.isfile(path):
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


def claim_work_dir(work_dir: str, resume: bool, overwrite: bool) -> None:
    """Make sure a new run does not mix with an old one in ``work_dir``.

    A work dir holding another run's checkpoints or samples is refused unless the run resumes
    it (``--resume``) or replaces it (``--overwrite``: the old checkpoints, ``last_checkpoint``
    and samples are deleted; the old logs stay in their own timestamped folders).
    """
    if resume or not osp.isdir(work_dir):
        return
    found = sorted(name for name in os.listdir(work_dir) if RUN_FILES.fullmatch(name))
    if not found:
        return
    if not overwrite:
        shown = ', '.join(found[:3]) + (', ...' if len(found) > 3 else '')
        raise UsageError(f'work dir {work_dir} already holds another run ({shown}); continue it '
                         'with --resume, pick another --work-dir, or replace it with '
                         '--overwrite')
    for name in found:
        path = osp.join(work_dir, name)
        if osp.isdir(path) and not osp.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    remove_partial_checkpoints(work_dir)
