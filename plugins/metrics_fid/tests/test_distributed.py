"""Two CPU processes (gloo) give the same metrics as one: batches are gathered in order."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

from genforce_metrics_fid import evaluate_generator, stats_cache
from genforce_metrics_fid.testing import TinyGenerator, random_inception

SCRIPT = '''
import json, sys
import torch.distributed as dist
from genforce_metrics_fid import evaluate_generator, stats_cache
from genforce_metrics_fid.testing import TinyGenerator, random_inception

dist.init_process_group('gloo')
data, cache, out = sys.argv[1:4]
detector = random_inception(0)
results = evaluate_generator(TinyGenerator(), dataset=data, num_gen=18, batch_size=4,
                             metrics=('fid', 'kid', 'is'), inception=detector, cache_dir=cache,
                             progress=False)
real = stats_cache.real_features(detector, data, batch_size=4, cache_dir=cache, use_cache=False,
                                 progress=False)
results['real_sum'] = float(real['feats'].astype('float64').sum())
results['real_first'] = real['feats'][:, 0].tolist()
with open(f'{out}.{dist.get_rank()}.json', 'w') as f:
    json.dump(results, f)
dist.destroy_process_group()
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path, shapes_folder):
    script = tmp_path / 'evaluate.py'
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, OMP_NUM_THREADS='1', MASTER_PORT=str(free_port()))
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={env["MASTER_PORT"]}', str(script), str(shapes_folder),
         str(tmp_path / 'cache2'), str(tmp_path / 'out')],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f'out.{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank gets the gathered result

    detector = random_inception(0)
    single = evaluate_generator(TinyGenerator(), dataset=str(shapes_folder), num_gen=18,
                                batch_size=4, metrics=('fid', 'kid', 'is'), inception=detector,
                                cache_dir=tmp_path / 'cache1', progress=False)
    real = stats_cache.real_features(detector, str(shapes_folder), batch_size=4,
                                     use_cache=False, progress=False)
    # Equal up to float32 noise: the worker processes and this one may run convolutions with
    # different thread counts (a lost, repeated or reordered batch changes the values by far more).
    for key in ('fid', 'kid', 'is', 'is_std'):
        assert ranks[0][key] == pytest.approx(single[key], rel=1e-5, abs=1e-9), key
    assert ranks[0]['real_first'] == pytest.approx(real['feats'][:, 0].tolist(), rel=1e-6)
    assert ranks[0]['real_sum'] == pytest.approx(float(real['feats'].astype('float64').sum()),
                                                 rel=1e-6)
    # The two-process run wrote the real statistics once, where one process finds them.
    assert len(list((tmp_path / 'cache2').glob('*.npz'))) == 1
