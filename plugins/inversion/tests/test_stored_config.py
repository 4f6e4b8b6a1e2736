"""`genforce invert` and the inversion loaders rebuild networks from a checkpoint's config as
data: a config string that would run code is refused, a plain older one still loads."""
from __future__ import annotations

import pytest
import torch
from mmengine.config import Config

from genforce_core.checkpoint import load_checkpoint
from genforce_core.errors import CheckpointError
from genforce_inversion.loading import load_gan_networks


def with_cfg(src, dst, cfg):
    checkpoint = dict(load_checkpoint(src))
    checkpoint['meta'] = dict(checkpoint['meta'], cfg=cfg)
    torch.save(checkpoint, dst)
    return dst


def test_config_string_that_runs_code_is_refused(gan_checkpoint, tmp_path):
    marker = tmp_path / 'PWNED'
    text = Config(load_checkpoint(gan_checkpoint)['meta']['cfg']).pretty_text
    evil = with_cfg(gan_checkpoint, tmp_path / 'evil.pth',
                    text + f"\n_x = __import__('os').system('touch {marker}')\n")
    with pytest.raises(CheckpointError, match='evil.pth.*not plain data'):
        load_gan_networks(evil)
    assert not marker.exists()


def test_import_path_type_is_refused(gan_checkpoint, tmp_path):
    marker = tmp_path / 'PWNED'
    cfg = dict(load_checkpoint(gan_checkpoint)['meta']['cfg'])
    cfg['model'] = dict(cfg['model'], generator=dict(type='os.system',
                                                     command=f'touch {marker}'))
    evil = with_cfg(gan_checkpoint, tmp_path / 'evil.pth', cfg)
    with pytest.raises(CheckpointError, match="model.generator.type='os.system'"):
        load_gan_networks(evil)
    assert not marker.exists()


def test_plain_config_string_of_older_checkpoints_loads(gan_checkpoint, tmp_path):
    text = Config(load_checkpoint(gan_checkpoint)['meta']['cfg']).pretty_text
    old = with_cfg(gan_checkpoint, tmp_path / 'old.pth', text)
    G_old, D_old, _ = load_gan_networks(old)
    G_new, D_new, _ = load_gan_networks(gan_checkpoint)
    for a, b in zip(G_old.state_dict().values(), G_new.state_dict().values()):
        assert torch.equal(a, b)
