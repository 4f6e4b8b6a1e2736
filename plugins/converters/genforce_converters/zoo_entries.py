"""Model-zoo entries for the published official models (contributed by this plugin).

``sha256`` is None where this project has not recorded the file's hash (it was written on a
machine without internet access; hashes are never guessed): ``genforce zoo download`` then
refuses to use the file unless ``--no-verify`` is given, and records the hash it saw so that
later downloads and uses are checked against it (trust on first use). ``fid`` is the value the
paper reports (None where not listed here).
"""
from __future__ import annotations

from typing import Any

_ADA = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/'
_SG2 = 'https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/'
_SG1 = 'https://nvlabs-fi-cdn.nvidia.com/stylegan/networks/'
_SG3 = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/'
# The StyleGAN3 release (Karras et al. 2021): T and R networks of each dataset ('-U': unaligned).
_SG3_MODELS = (('ffhq', 1024, 'FFHQ'), ('ffhqu', 1024, 'FFHQ-U'), ('ffhqu', 256, 'FFHQ-U'),
               ('metfaces', 1024, 'MetFaces'), ('metfacesu', 1024, 'MetFaces-U'),
               ('afhqv2', 512, 'AFHQv2'))


def _entry(name: str, family: str, resolution: int, dataset: str, url: str, converter: str,
           fid: float | None, **extra: Any) -> dict[str, Any]:
    return dict(name=name, family=family, resolution=resolution, dataset=dataset, url=url,
                sha256=None, converter=converter, fid=fid, **extra)


ENTRIES: list[dict[str, Any]] = [
    # StyleGAN2-ADA (PyTorch release; Karras et al. 2020, "Training GANs with limited data").
    _entry('stylegan2ada-ffhq1024', 'stylegan2ada', 1024, 'FFHQ', _ADA + 'ffhq.pkl',
           'stylegan2ada_pth', None),
    _entry('stylegan2ada-metfaces1024', 'stylegan2ada', 1024, 'MetFaces',
           _ADA + 'metfaces.pkl', 'stylegan2ada_pth', 18.22),
    _entry('stylegan2ada-afhqcat512', 'stylegan2ada', 512, 'AFHQ Cat', _ADA + 'afhqcat.pkl',
           'stylegan2ada_pth', 3.55),
    _entry('stylegan2ada-afhqdog512', 'stylegan2ada', 512, 'AFHQ Dog', _ADA + 'afhqdog.pkl',
           'stylegan2ada_pth', 7.40),
    _entry('stylegan2ada-afhqwild512', 'stylegan2ada', 512, 'AFHQ Wild', _ADA + 'afhqwild.pkl',
           'stylegan2ada_pth', 3.05),
    _entry('stylegan2ada-brecahad512', 'stylegan2ada', 512, 'BreCaHAD',
           _ADA + 'brecahad.pkl', 'stylegan2ada_pth', 15.71),
    _entry('stylegan2ada-cifar10-32', 'stylegan2ada', 32, 'CIFAR-10 (conditional)',
           _ADA + 'cifar10.pkl', 'stylegan2ada_pth', 2.42, conditional=True),
    # StyleGAN2 (TensorFlow release, config F; Karras et al. 2020).
    _entry('stylegan2-ffhq1024', 'stylegan2', 1024, 'FFHQ',
           _SG2 + 'stylegan2-ffhq-config-f.pkl', 'stylegan2_tf', 2.84),
    _entry('stylegan2-car512', 'stylegan2', 512, 'LSUN Car (512x384 in 512x512)',
           _SG2 + 'stylegan2-car-config-f.pkl', 'stylegan2_tf', 2.32),
    _entry('stylegan2-cat256', 'stylegan2', 256, 'LSUN Cat',
           _SG2 + 'stylegan2-cat-config-f.pkl', 'stylegan2_tf', 6.93),
    _entry('stylegan2-church256', 'stylegan2', 256, 'LSUN Church',
           _SG2 + 'stylegan2-church-config-f.pkl', 'stylegan2_tf', 3.86),
    _entry('stylegan2-horse256', 'stylegan2', 256, 'LSUN Horse',
           _SG2 + 'stylegan2-horse-config-f.pkl', 'stylegan2_tf', 3.43),
    # StyleGAN (v1, TensorFlow release; Karras et al. 2019).
    _entry('stylegan-ffhq1024', 'stylegan', 1024, 'FFHQ',
           _SG1 + 'karras2019stylegan-ffhq-1024x1024.pkl', 'stylegan_tf', 4.40),
    _entry('stylegan-celebahq1024', 'stylegan', 1024, 'CelebA-HQ',
           _SG1 + 'karras2019stylegan-celebahq-1024x1024.pkl', 'stylegan_tf', 5.06),
    _entry('stylegan-bedrooms256', 'stylegan', 256, 'LSUN Bedroom',
           _SG1 + 'karras2019stylegan-bedrooms-256x256.pkl', 'stylegan_tf', 2.65),
    _entry('stylegan-cars512', 'stylegan', 512, 'LSUN Car (512x384 in 512x512)',
           _SG1 + 'karras2019stylegan-cars-512x384.pkl', 'stylegan_tf', 3.27),
    _entry('stylegan-cats256', 'stylegan', 256, 'LSUN Cat',
           _SG1 + 'karras2019stylegan-cats-256x256.pkl', 'stylegan_tf', 8.53),
    # StyleGAN3 (PyTorch release); FIDs not recorded here.
    *(_entry(f'stylegan3{cfg}-{data}{res}', 'stylegan3', res, dataset,
             f'{_SG3}stylegan3-{cfg}-{data}-{res}x{res}.pkl', 'stylegan3_pth', None)
      for cfg in ('t', 'r') for data, res, dataset in _SG3_MODELS),
]
