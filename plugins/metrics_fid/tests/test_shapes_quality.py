"""ShapesQuality: the offline quality measure of generators of the built-in shapes.

The tests marked slow share one trained classifier (about 80 s of CPU time, once) cached in
the session's base temp folder (the learning regression test in tests/test_learning.py uses the
same folder, so a full run trains it once).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from torch import nn

from genforce_core.checkpoint import save_checkpoint
from genforce_core.registry import METRICS
from genforce_metrics_fid import shapes_classifier as sc
from genforce_metrics_fid.scores import MetricError
from genforce_metrics_fid.shapes_quality import (
    NUM_COMBINATIONS,
    ShapesQuality,
    combination_labels,
    generate_images,
    shapes_quality,
)
from genforce_metrics_fid.testing import TinyGenerator


class ReplayGenerator(nn.Module):
    """``G(z, c)`` that returns the next of the given uint8 images (lets the metric judge real
    data, or any fixed set, through the same generation path)."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.z_dim, self.c_dim, self.position = images, 4, 0, 0
        self.anchor = nn.Parameter(torch.zeros(1))  # the metric finds the device through it

    def forward(self, z, c):
        batch = self.images[self.position:self.position + len(z)]
        self.position += len(z)
        return batch.float() / 127.5 - 1


def evaluate(images: torch.Tensor, cache) -> dict[str, float]:
    metric = ShapesQuality(num_gen=len(images), cache_dir=str(cache), progress=False)
    return metric.evaluate_model(ReplayGenerator(images))


@pytest.fixture(scope='session')
def trained_cache(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / 'genforce_cache' / 'shapes_classifier'
    sc.load_classifier(cache, progress=False)
    return cache


# -- fast: input handling, options, RNG, cache logic --------------------------------------

def test_classifier_input_is_what_a_saved_image_shows():
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8)
    as_float = images.float() / 127.5 - 1 + 1e-3  # a generator's output, slightly off-grid
    expected = torch.nn.functional.avg_pool2d(images.float() / 127.5 - 1, 2)
    for x in (images, as_float):
        assert torch.allclose(sc.to_classifier_input(x), expected, atol=1e-6)
    out_of_range = torch.full((1, 3, 32, 32), 3.0)
    assert torch.equal(sc.to_classifier_input(out_of_range), torch.ones(1, 3, 32, 32))
    for bad in (torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 32, 64), torch.zeros(1, 1, 32, 32),
                torch.zeros(1, 3, 48, 48)):
        with pytest.raises(MetricError, match='shapes'):
            sc.to_classifier_input(bad)


def test_metric_is_registered_and_checks_its_options():
    metric = METRICS.build(dict(type='ShapesQuality', num_gen=300))
    assert isinstance(metric, ShapesQuality) and metric.num_gen == 300
    with pytest.raises(MetricError, match='num_gen=10'):
        ShapesQuality(num_gen=10)
    with pytest.raises(MetricError, match='threshold=1.5'):
        ShapesQuality(threshold=1.5)
    with pytest.raises(MetricError, match='GenerativeTestLoop'):
        metric.process({}, [])


class NoisyGenerator(TinyGenerator):
    """Draws per-call noise from the global RNG, as StyleGAN2's noise inputs do."""

    def forward(self, z, c):
        return super().forward(z, c) + 0.1 * torch.randn(len(z), 3, 32, 32)


def test_generated_images_depend_on_the_seed_only_and_leave_the_rng_alone():
    generator = NoisyGenerator(c_dim=15)
    state = torch.get_rng_state()
    first = generate_images(generator, 8, 15, 130, 'cpu', batch_size=50, seed=1)
    assert torch.equal(torch.get_rng_state(), state)  # a training run continues unchanged
    torch.manual_seed(123)
    assert torch.equal(generate_images(generator, 8, 15, 130, 'cpu', batch_size=50, seed=1),
                       first)
    assert first.dtype == torch.uint8 and first.shape == (130, 3, 32, 32)
    assert not torch.equal(generate_images(generator, 8, 15, 130, 'cpu', seed=2), first)


def test_conditional_generators_get_the_built_in_labels_of_uniform_combinations():
    from genforce_core.api import shape_combination, shape_label

    labels = combination_labels(torch.tensor([0, 32, 95, 45]))
    assert labels.tolist() == [shape_label(0, 0, 0), shape_label(1, 0, 0),
                               shape_label(2, 7, 3), shape_label(1, 3, 1)]
    assert shape_combination(1, 3, 1) == 45
    asked = []

    def generate(z, c):
        asked.append(c)
        return torch.zeros(len(z), 3, 32, 32)
    generate_images(generate, 4, 15, 960, 'cpu', batch_size=480)
    c = torch.cat(asked)
    assert (c[:, :3].sum(1) == 1).all() and (c[:, 3:11].sum(1) == 1).all() \
        and (c[:, 11:].sum(1) == 1).all()
    combos = shape_combination(c[:, :3].argmax(1), c[:, 3:11].argmax(1), c[:, 11:].argmax(1))
    assert len(combos.unique()) == 96  # uniform over all of them (10 expected each)
    with pytest.raises(MetricError, match='conditioned on the built-in labels .* got c_dim 3'):
        generate_images(generate, 4, 3, 100, 'cpu')


def _fake_training(calls):
    def train(progress=False):
        calls.append(1)
        torch.manual_seed(len(calls))
        return sc.ShapesClassifier(sc.RECIPE['width'], sc.RECIPE['feature_dim']).eval(), 0.5
    return train


@pytest.mark.filterwarnings('ignore:checkpoint .* carries no checksums')
def test_cache_is_reused_and_a_damaged_one_rebuilt(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(sc, 'train_classifier', _fake_training(calls))
    monkeypatch.setattr(sc, '_LOADED', {})
    first = sc.load_classifier(tmp_path, progress=False)
    path = tmp_path / f'classifier-{sc.recipe_key()}.pth'
    assert path.is_file() and len(calls) == 1
    sc._LOADED.clear()  # a new process: read from disk, not trained again
    again = sc.load_classifier(tmp_path, progress=False)
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(),
                                                 again.state_dict().values()))

    path.write_bytes(path.read_bytes()[:500])  # cut short
    sc._LOADED.clear()
    with pytest.warns(UserWarning, match='unusable'):
        sc.load_classifier(tmp_path, progress=False)
    assert len(calls) == 2
    sc._LOADED.clear()
    sc.load_classifier(tmp_path, progress=False)  # the rebuilt file loads
    assert len(calls) == 2

    save_checkpoint({'something': torch.zeros(2)}, path)  # loads, but is not a classifier
    sc._LOADED.clear()
    with pytest.warns(UserWarning, match='does not fit'):
        sc.load_classifier(tmp_path, progress=False)
    assert len(calls) == 3


def test_cache_key_follows_the_generator_and_the_recipe(monkeypatch):
    key = sc.recipe_key()
    monkeypatch.setitem(sc.RECIPE, 'epochs', sc.RECIPE['epochs'] + 1)
    assert sc.recipe_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(sc, 'GENERATOR_VERSION', sc.GENERATOR_VERSION + 1)
    assert sc.recipe_key() != key


# -- slow: the trained classifier and the three numbers -----------------------------------

@pytest.mark.slow
def test_classifier_is_accurate_on_held_out_images(trained_cache):
    classifier = sc.load_classifier(trained_cache, progress=False)
    images, labels = sc.real_shapes(1000, seed=4242)
    assert sc.accuracy(classifier, images, labels) >= 0.99


@pytest.mark.slow
def test_real_images_score_high_with_full_coverage(trained_cache):
    images, _ = sc.real_shapes(1000, seed=4243)
    scores = evaluate(images, trained_cache)
    assert scores['shapes_recognised'] >= 0.97
    assert scores['shapes_coverage'] == 1.0
    assert scores['shapes_fd'] < 15  # sampling noise of 1000 images; collapse/noise > 200


@pytest.mark.slow
def test_noise_and_an_untrained_generator_score_near_zero(trained_cache):
    noise = torch.randint(0, 256, (300, 3, 32, 32), dtype=torch.uint8)
    blurry = generate_images(TinyGenerator(seed=3), 8, 0, 300, 'cpu')  # smooth colour fields
    for images in (noise, blurry):
        scores = evaluate(images, trained_cache)
        assert scores['shapes_recognised'] <= 0.02
        assert scores['shapes_coverage'] <= 0.03
        assert scores['shapes_fd'] > 200


@pytest.mark.slow
def test_a_collapsed_generator_covers_one_combination(trained_cache):
    images, labels = sc.real_shapes(1500, seed=4244)
    keep = (labels['shape'] == 0) & (labels['colour'] == 0) & (labels['ground'] == 0)
    assert keep.sum() >= 3  # red circles on white, repeated
    collapsed = images[keep][torch.arange(300) % int(keep.sum())]
    scores = evaluate(collapsed, trained_cache)
    assert scores['shapes_recognised'] >= 0.95  # each image is a fine red circle...
    assert scores['shapes_coverage'] == 1 / NUM_COMBINATIONS  # ...but only that
    assert scores['shapes_fd'] > 200


@pytest.mark.slow
def test_larger_images_are_judged_against_references_of_their_resolution(trained_cache):
    classifier = sc.load_classifier(trained_cache, progress=False)
    images, _ = sc.real_shapes(300, seed=4245, resolution=64)
    reference = sc.reference_stats(classifier, 64, trained_cache, progress=False)
    scores = shapes_quality(classifier, images, reference)
    assert scores['shapes_recognised'] >= 0.95 and scores['shapes_fd'] < 30
    assert list(trained_cache.glob('reference64-*.pth'))


DISTRIBUTED_SCRIPT = '''
import json, sys, time
import torch
import torch.distributed as dist
from genforce_metrics_fid import shapes_classifier as sc
from genforce_metrics_fid.shapes_quality import evaluate_shapes
from genforce_metrics_fid.testing import TinyGenerator

def quick_training(progress=False):  # stands in for the real one; logs who trains
    with open(sys.argv[2], 'a') as log:
        log.write(f'{dist.get_rank()}\\n')
    time.sleep(2)  # a rank that did not wait would find no cache file and train too
    torch.manual_seed(0)
    return sc.ShapesClassifier(sc.RECIPE['width'], sc.RECIPE['feature_dim']).eval(), 1.0

sc.train_classifier = quick_training
dist.init_process_group('gloo')
scores = evaluate_shapes(TinyGenerator(), 8, num_gen=100, cache_dir=sys.argv[1],
                         progress=False)
with open(f'{sys.argv[3]}.{dist.get_rank()}.json', 'w') as f:
    json.dump(scores, f)
dist.destroy_process_group()
'''


@pytest.mark.slow
def test_in_a_distributed_run_rank0_trains_and_all_ranks_agree(tmp_path):
    script = tmp_path / 'evaluate.py'
    script.write_text(DISTRIBUTED_SCRIPT)
    with socket.socket() as free:
        free.bind(('127.0.0.1', 0))
        port = str(free.getsockname()[1])
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}', str(script), str(tmp_path / 'cache'),
         str(tmp_path / 'trained.log'), str(tmp_path / 'out')],
        env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / 'trained.log').read_text().split() == ['0']
    ranks = [json.loads((tmp_path / f'out.{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1] and set(ranks[0]) == {'shapes_recognised', 'shapes_coverage',
                                                      'shapes_fd'}
