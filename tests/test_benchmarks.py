"""The benchmarks run, print their table and write JSON (tiny settings; no timing asserted)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / 'benchmarks' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_speed_table_and_json(tmp_path, capsys):
    train_speed = _load('train_speed')
    out = tmp_path / 'speed.json'
    assert train_speed.main([str(REPO / 'configs' / 'demo.py'), '--resolution', '8',
                             '--batch', '4', '--iters', '1', '--warmup', '1', '--device', 'cpu',
                             '--ops', 'cuda', 'ref', '--precision', 'fp32', 'fp16',
                             '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'skipped demo.py ops=cuda fp32: CUDA kernels need a CUDA device' in printed
    assert 'skipped demo.py ops=ref fp16' in printed
    rows = json.loads(out.read_text())['results']
    assert [(r['ops'], r['precision'], r['resolution'], r['batch']) for r in rows] == [
        ('ref', 'fp32', 8, 4)]
    assert rows[0]['img_per_s'] > 0 and f'{rows[0]["img_per_s"]:.1f}' in printed
    from genforce_core.api import reference_forced
    assert not reference_forced()  # lifted after timing the reference path


def test_official_compare_refuses_a_missing_official_dir(tmp_path, capsys):
    official_compare = _load('official_compare')
    out = tmp_path / 'compare.json'
    assert official_compare.main(['--official-dir', str(tmp_path / 'absent'),
                                  '--out', str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'official_compare: --official-dir {tmp_path / "absent"}: no such directory'
    assert not out.exists()


def test_official_compare_refuses_a_dir_without_the_official_code(tmp_path, capsys):
    official_compare = _load('official_compare')
    (tmp_path / 'training').mkdir()
    (tmp_path / 'training' / 'networks.py').write_text('')
    assert official_compare.main(['--official-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'not a stylegan2-ada-pytorch checkout' in err
    assert 'training/loss.py' in err and 'training/networks.py' not in err
    assert len(err.strip().splitlines()) == 1


def test_official_learning_refuses_bad_input(tmp_path, capsys):
    official_learning = _load('official_learning')
    out = tmp_path / 'learning.json'
    assert official_learning.main(['--official-dir', str(tmp_path / 'absent'),
                                   '--out', str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        f'official_learning: --official-dir {tmp_path / "absent"}: no such directory')
    assert official_learning.main(['--official-dir', str(tmp_path), '--kimg', '0']) == 2
    assert capsys.readouterr().err.strip() == 'official_learning: --kimg must be positive, got 0.0'
    assert not out.exists()


def test_official_learning_batches_visit_every_image_once_per_epoch():
    official_learning = _load('official_learning')
    order = official_learning.batches(10, 4, seed=0)
    first = [i for _ in range(5) for i in next(order)]  # 20 indices: two epochs
    assert sorted(first[:10]) == list(range(10)) and sorted(first[10:]) == list(range(10))
    assert first[:10] != first[10:]  # reshuffled
    again = official_learning.batches(10, 4, seed=0)
    assert [i for _ in range(5) for i in next(again)] == first


def test_official_learning_trains_and_judges_our_side():
    import torch

    from genforce_core.config import load_config
    official_learning = _load('official_learning')
    config = str(REPO / 'configs' / 'demo.py')
    settings = official_learning.official_settings(load_config(config))
    threads = torch.get_num_threads()
    try:
        run = official_learning.train(dict(
            side='ours', seed=0, config=config, settings=settings, batch=4,
            kimg=0.008, eval_kimg=0.004, data_seed=0))
    finally:
        torch.set_num_threads(threads)
    assert run['side'] == 'ours' and [e['kimg'] for e in run['evals']] == [0.004, 0.008]
    for e in run['evals']:
        assert 0 <= e['shapes_recognised'] <= 1 and 0 <= e['shapes_coverage'] <= 1
        assert e['shapes_fd'] > 100 and e['train_s'] > 0  # 8 images in: far from the data


def test_cpu_speedups_table_and_json(tmp_path, capsys):
    cpu_speedups = _load('cpu_speedups')
    out = tmp_path / 'cpu.json'
    assert cpu_speedups.main(['--batch', '4', '--iters', '1', '--rounds', '1', '--repeats', '1',
                              '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())['results']
    variants = {(r['memory'], r['layout']) for r in rows}
    assert ('glibc_default', 'nchw') in variants and ('glibc_default', 'channels_last') in variants
    base = next(r for r in rows if (r['memory'], r['layout']) == ('glibc_default', 'nchw'))
    assert base['speedup_cpu'] == base['speedup_wall'] == 1.0 and base['rounds'] == 1
    assert all(r['cpu_ms_per_iter'] > 0 and f'{r["speedup_wall"]:.2f}x' in printed
               for r in rows)
