"""``genforce test CONFIG CHECKPOINT``: evaluates a checkpoint with the config's metrics."""
from __future__ import annotations

import textwrap

METRIC = '''
from mmengine.evaluator import BaseMetric

from genforce_core.registry import METRICS


@METRICS.register_module()
class FakeBrightness(BaseMetric):
    """Mean pixel value of the generated images (a stand-in for FID in this test)."""

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float(sample['fake_img'].float().mean()))

    def compute_metrics(self, results):
        return dict(brightness=sum(results) / len(results), count=len(results))
'''


def test_test_command_evaluates_a_checkpoint(genforce, tmp_path, example_config,
                                             example_plugin_site, tiny_dcgan, shapes_zip):
    (tmp_path / 'fake_metric.py').write_text(METRIC)
    config = tmp_path / 'eval.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(example_config)!r}]
        custom_imports = dict(imports=['fake_metric'], allow_failed_imports=False)
        custom_hooks = []
        default_hooks = dict(checkpoint=dict(_delete_=True, type='CheckpointHook', interval=2,
                                             by_epoch=False))
        test_dataloader = dict(
            batch_size=8, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='ImageDataset', path={str(shapes_zip)!r}, resolution=32),
            collate_fn=dict(type='default_collate'))
        test_cfg = dict(type='TestLoop')
        test_evaluator = dict(type='FakeBrightness')
    '''))
    site = [example_plugin_site, tmp_path]
    work = tmp_path / 'wd'
    genforce(['train', str(config), '--work-dir', str(work), '--cfg-options', *tiny_dcgan,
              'train_cfg.total_kimg=0.008'],
             pythonpath=site)
    proc = genforce(['test', str(config), str(work / 'iter_2.pth'), '--work-dir', str(work),
                     '--cfg-options', *tiny_dcgan], pythonpath=site)
    assert 'count: 64' in proc.stdout  # one generated image per test image
    assert 'brightness:' in proc.stdout

    proc = genforce(['test', str(config), str(work / 'missing.pth')], pythonpath=site,
                    check=False)
    assert proc.returncode == 2 and 'missing.pth does not exist' in proc.stderr


def test_test_command_without_metrics_says_what_to_add(genforce, tmp_path, example_config,
                                                       example_plugin_site):
    checkpoint = tmp_path / 'x.pth'
    checkpoint.write_bytes(b'')
    proc = genforce(['test', str(example_config), str(checkpoint)],
                    pythonpath=[example_plugin_site], check=False)
    assert proc.returncode == 2
    assert 'has no test_dataloader, test_cfg, test_evaluator' in proc.stderr
    assert 'genforce-plugin-metrics-fid' in proc.stderr
