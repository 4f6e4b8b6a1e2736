"""The mmengine metrics: registry, model-driven evaluation with shared features, fallback."""
from __future__ import annotations

import pytest
import torch

from genforce_core.registry import METRICS
from genforce_metrics_fid import evaluate_generator, scores
from genforce_metrics_fid.metrics import FID, IS, KID
from genforce_metrics_fid.testing import TinyGenerator


def test_metrics_are_registered():
    for name in ('FID', 'KID', 'IS'):
        assert METRICS.get(name) is not None
    metric = METRICS.build(dict(type='FID', name='fid10k'))
    assert (metric.spec.num_gen, metric.spec.max_real) == (10000, 10000)
    with pytest.raises(ValueError, match="KID name 'kid50k_full'; use type=KID"):
        FID(name='kid50k_full')


def test_metrics_generate_once_and_match_evaluate_generator(detector, shapes_folder, tmp_path):
    calls = []

    class Counting(TinyGenerator):
        def forward(self, z, c):
            calls.append(len(z))
            return super().forward(z, c)

    opts = dict(inception=detector, batch_size=6, cache_dir=str(tmp_path), num_workers=0,
                progress=False)
    shared: dict = {}
    generator = Counting()
    results = {}
    for metric in (FID(name='fid12_full', **opts), KID(name='kid12_full', **opts),
                   IS(name='is12', **opts)):
        results.update(metric.evaluate_model(generator, str(shapes_folder), shared))
    assert sum(calls) == 12  # one generation shared by the three metrics
    expected = evaluate_generator(TinyGenerator(), dataset=str(shapes_folder), num_gen=12,
                                  batch_size=6, metrics=('fid12_full', 'kid12_full', 'is12'),
                                  inception=detector, cache_dir=tmp_path, progress=False)
    assert results == pytest.approx(expected, rel=1e-9)


def test_fallback_on_val_step_outputs(detector):
    torch.manual_seed(0)
    fake = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    real = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8)
    samples = [dict(fake_img=f, real_img=r) for f, r in zip(fake, real)]
    metric = FID(name='fid12', inception=detector)
    metric.process({}, samples[:5])
    metric.process({}, samples[5:])
    value = metric.evaluate(12)['fid12']
    direct = scores.fid_from_features(detector(real)[0].numpy(), detector(fake)[0].numpy())
    assert value == pytest.approx(direct, rel=1e-5)
    inception = IS(name='is12', inception=detector, is_splits=3)
    inception.process({}, samples)
    assert inception.evaluate(12)['is12'] == pytest.approx(
        scores.inception_score(detector(fake)[1].numpy(), 3)[0], rel=1e-5)
