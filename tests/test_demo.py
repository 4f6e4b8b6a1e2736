"""The README's main job, `tools/demo.py`, end to end (a few iterations instead of minutes)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_trains_and_says_where_everything_is(tmp_path, tmp_path_factory):
    work = tmp_path / 'demo'
    # The session's cache (as test_learning and the metric tests): the shapes classifier is
    # trained once per session; test_first_hour checks the first-use writing of the dataset.
    cache = tmp_path_factory.getbasetemp() / 'genforce_cache'
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'demo.py'), '--work-dir', str(work),
         '--cfg-options', 'train_cfg.total_kimg=0.048'],
        capture_output=True, text=True, timeout=900,
        env=dict(os.environ, GENFORCE_CACHE_DIR=str(cache)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (cache / 'builtin' / 'shapes32.zip').is_file()
    assert (work / 'samples' / 'reals.png').is_file()
    assert sorted((work / 'samples').glob('fakes*.png'))
    assert list(work.glob('*/vis_data/events.out.tfevents*'))
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).is_file()
    for line in ('quality      : ', ' recognised, ', 'sample grids :', 'TensorBoard  :',
                 f'checkpoint   : {checkpoint}'):
        assert line in proc.stdout
