"""Turns a collated batch of uint8 images into the network's float range [-1, 1]."""
from __future__ import annotations

from typing import Any

import torch
from mmengine.model import BaseDataPreprocessor

from ..registry import MODELS


@MODELS.register_module()
class GANDataPreprocessor(BaseDataPreprocessor):
    """``{'img': uint8 [N,C,H,W], 'label': [N,c]}`` → float images in [-1, 1] on the device.

    Args:
        channels_last: Store images in channels-last memory format (faster convolutions on
            recent GPUs when the networks are channels-last too).
    """

    def __init__(self, channels_last: bool = False):
        super().__init__()
        self.channels_last = channels_last

    def forward(self, data: dict[str, Any], training: bool = False) -> dict[str, Any]:
        data = self.cast_data(data)
        img = data['img']
        if img.dtype == torch.uint8:
            img = img.to(torch.float32) / 127.5 - 1
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        out = dict(data, img=img)
        label = data.get('label')
        if label is None:
            label = torch.zeros(img.shape[0], 0, device=img.device)
        out['label'] = label.to(torch.float32)
        return out
