"""``genforce synthesize --translate/--rotate`` on StyleGAN3 checkpoints: the images move as
NVIDIA's ``gen_images.py`` moves them (+x right, +y down, +angle counter-clockwise), no motion
changes no pixel, and the generator and its checkpoint are left as they were."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from genforce_core.api import (
    MODELS,
    config_to_data,
    image_transform,
    load_plugins,
    save_checkpoint,
    supports_image_transform,
)
from genforce_core.cli.main import main
from genforce_stylegan3.plugin import genforce_test_models

RES = 16  # the test models' resolution: a shift of 2 pixels is translate 0.125


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Checkpoints of the plugin's tiny T and R test models (random weights), by config."""
    load_plugins()
    folder = tmp_path_factory.mktemp('sg3')
    paths = {}
    for case in genforce_test_models()[:2]:
        cfg = case['model']
        torch.manual_seed(0)
        model = MODELS.build(dict(cfg))
        paths[case['name'][len('stylegan3')]] = save_checkpoint(
            dict(meta=dict(cfg=config_to_data(Config(dict(model=cfg)))),
                 state_dict=model.state_dict()), folder / f'{case["name"]}.pth')
    return paths


def synthesize(checkpoint: Path, out: Path, *flags: str) -> np.ndarray:
    """uint8 images ``[N, H, W, 3]`` of seeds 0-3 written by ``genforce synthesize``."""
    assert main(['synthesize', str(checkpoint), '--seeds', '0-3', '--device', 'cpu',
                 '--out', str(out), *flags]) == 0
    return np.stack([np.asarray(Image.open(out / f'seed{s:04d}.png')) for s in range(4)])


def shift_error(moved: np.ndarray, plain: np.ndarray, dx: int, dy: int) -> float:
    """Mean absolute difference between ``moved`` and ``plain`` moved by ``(dx, dy)`` pixels,
    over the part of the image both show."""
    h, w = plain.shape[1:3]
    moved = moved[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)].astype(float)
    plain = plain[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)].astype(float)
    return float(np.abs(moved - plain).mean())


def test_no_motion_changes_no_pixel(checkpoints, tmp_path):
    plain = synthesize(checkpoints['t'], tmp_path / 'plain')
    still = synthesize(checkpoints['t'], tmp_path / 'still', '--translate', '0,0', '--rotate', '0')
    assert np.array_equal(still, plain)


@pytest.mark.parametrize('translate,dx,dy', [('0.125,0', 2, 0), ('=-0.125,0.125', -2, 2),
                                             ('0,-0.0625', 0, -1)])
def test_translation_moves_the_content(checkpoints, tmp_path, translate, dx, dy):
    # translate is in image sizes: 0.125 of 16 pixels is 2 pixels, +x right, +y down. The
    # alias-free generator moves its content by that much (new content enters at a border).
    plain = synthesize(checkpoints['t'], tmp_path / 'plain')
    flag = f'--translate{translate}' if translate.startswith('=') else None
    moved = synthesize(checkpoints['t'], tmp_path / 'moved',
                       *([flag] if flag else ['--translate', translate]))
    expected = shift_error(moved, plain, dx, dy)
    assert expected < 0.25 * shift_error(moved, plain, -dx, -dy)
    assert expected < 0.5 * shift_error(moved, plain, 0, 0)
    assert expected < 4  # of 255: the same content, up to rounding and residual aliasing


def test_rotation_is_counter_clockwise(checkpoints, tmp_path):
    # The R configuration (1x1 convolutions, radial filters) turns exactly by quarter turns.
    plain = synthesize(checkpoints['r'], tmp_path / 'plain')
    turned = synthesize(checkpoints['r'], tmp_path / 'turned', '--rotate', '90')
    counter_clockwise = np.rot90(plain, k=1, axes=(1, 2))  # as displayed, y pointing down
    assert np.abs(turned.astype(int) - counter_clockwise).max() <= 1
    assert np.abs(turned.astype(int) - np.rot90(plain, k=-1, axes=(1, 2))).mean() > 4


def test_the_motion_is_undone_and_saved_nowhere(checkpoints, tmp_path):
    digest = hashlib.sha256(checkpoints['t'].read_bytes()).hexdigest()
    synthesize(checkpoints['t'], tmp_path / 'moved', '--translate', '0.25,0.1', '--rotate', '30')
    assert hashlib.sha256(checkpoints['t'].read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in (tmp_path / 'moved').iterdir()) == [
        f'seed{s:04d}.png' for s in range(4)]

    from genforce_core.api import load_generator

    G = load_generator(checkpoints['t'])
    assert supports_image_transform(G)
    z = torch.randn(2, G.z_dim)
    state = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        plain = G(z)
        with pytest.raises(RuntimeError, match='inside'), image_transform(G, (0.25, 0.1), 30):
            assert not torch.allclose(G(z), plain)
            raise RuntimeError('inside')
        assert torch.equal(G(z), plain)  # later calls see no motion
    assert all(torch.equal(v, state[k]) for k, v in G.state_dict().items())


def test_the_motion_goes_on_top_of_a_stored_transform(checkpoints):
    # A checkpoint whose input transform is not the identity keeps it; the user's motion is
    # applied to the images it makes (NVIDIA's gen_images.py replaces the buffer instead, the
    # same thing for the identity that trained and converted models hold).
    from genforce_core.api import load_generator
    from genforce_stylegan3.transforms import input_transform

    G = load_generator(checkpoints['t'])
    stored = input_transform((0.1, -0.05), 20)
    G.synthesis.input.transform.copy_(stored)
    with G.image_transform((0.125, 0), 0):
        assert torch.allclose(G.synthesis.input.transform, stored @ input_transform((0.125, 0)))
    assert torch.equal(G.synthesis.input.transform, stored)
