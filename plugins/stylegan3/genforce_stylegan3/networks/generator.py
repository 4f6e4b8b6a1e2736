"""The alias-free generator (Karras et al. 2021): mapping, Fourier input, synthesis layers.

Parameter and buffer names follow NVIDIA's StyleGAN3 release so that its state dicts load with
strict key matching: ``mapping.fc{i}``/``mapping.w_avg``, ``synthesis.input.*`` and one
``synthesis.L{i}_{size}_{channels}`` per layer.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from genforce_stylegan2.networks.layers import FullyConnectedLayer, MappingNetwork

from ..filters import InputSpec, LayerSpec, layer_filters, layer_specs
from ..ops import filtered_lrelu
from ..transforms import input_transform


class SynthesisInput(nn.Module):
    """Fourier features ``sin(2 pi (f . (M x + t) + phase))`` on a grid with margin.

    ``freqs``/``phases`` are fixed random buffers (directions uniform, radii up to the
    bandwidth). The first w, through ``affine``, gives a rotation angle (its first two outputs
    as a unit vector) and a translation (the last two), so that the network can orient and
    place the content; ``transform`` is a user-controlled 3x3 matrix applied on top (identity
    by default) for translating/rotating the output. Frequencies that the transform pushes
    above the bandwidth are faded out linearly towards the Nyquist frequency.
    """

    def __init__(self, w_dim: int, spec: InputSpec):
        super().__init__()
        self.w_dim = w_dim
        self.channels = spec.channels
        self.size = [spec.size, spec.size]
        self.sampling_rate = spec.sampling_rate
        self.bandwidth = spec.bandwidth

        freqs = torch.randn([self.channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= self.bandwidth
        phases = torch.rand([self.channels]) - 0.5

        self.weight = nn.Parameter(torch.randn([self.channels, self.channels]))
        self.affine = FullyConnectedLayer(w_dim, 4)
        with torch.no_grad():  # start at "no rotation, no translation"
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0, 0, 0]))
        self.register_buffer('transform', torch.eye(3))
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # [N, 4]: cos-like, sin-like, tx, ty
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=t.dtype).unsqueeze(0).repeat(n, 1, 1)
        rot = eye.clone()
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        shift = eye.clone()
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        m = rot @ shift @ self.transform.unsqueeze(0)

        # f . (A x + c) = (f A) . x + f . c: move the transform onto frequencies and phases.
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ m[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ m[:, :2, :2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth)
                      / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        grid = self._grid(w.device, freqs.dtype)  # [H, W, 2] in units of the sampling rate
        x = torch.einsum('hwk,nck->nhwc', grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def _grid(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Pixel centres, the image centred on 0, one unit = ``sampling_rate`` pixels."""
        h, w = self.size
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5 - h / 2) / self.sampling_rate
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5 - w / 2) / self.sampling_rate
        gy, gx = torch.meshgrid(ys, xs, indexing='ij')
        return torch.stack([gx, gy], dim=2)

    def extra_repr(self) -> str:
        return (f'w_dim={self.w_dim}, channels={self.channels}, size={self.size}, '
                f'sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}')


def half_precision_on(device: torch.device) -> bool:
    """Whether layers with ``use_fp16`` compute in float16 on ``device`` (CUDA only, as
    officially: float16 convolutions on a CPU are slow and gain nothing)."""
    return device.type == 'cuda'


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     padding: int, demodulate: bool, input_gain: torch.Tensor | None
                     ) -> torch.Tensor:
    """Per-sample convolution with ``weight * styles`` (normalized when ``demodulate``), in
    x's dtype; ``weight`` and ``styles`` are float32.

    Computed as ``conv(x * styles, weight) * dcoefs``: scaling input channels per sample and
    output channels per sample equals convolving with per-sample weights, and lets one ordinary
    batched convolution do the work.
    """
    n, in_ch = x.shape[:2]
    if demodulate:  # scale-free anyway; normalizing first keeps the products in range
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()
        if x.dtype == torch.float16:  # the sums of the convolution stay near 1, far from 65504
            weight = weight / math.sqrt(weight[0].numel())
    scale = styles if input_gain is None else styles * input_gain
    x = torch.nn.functional.conv2d(x * scale.to(x.dtype).reshape(n, in_ch, 1, 1),
                                   weight.to(x.dtype), padding=padding)
    if demodulate:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, out]
        x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """Modulated convolution followed by ``filtered_lrelu`` (ToRGB: linear, no filters).

    The input is divided by the root of ``magnitude_ema``, a running mean square of the layer's
    input updated when ``update_emas`` is True, so every layer sees inputs of unit magnitude.
    With ``use_fp16`` the layer computes in float16 on CUDA (its parameters stay float32) and
    returns float16; otherwise in float32 (or float64 for a float64 input).
    """

    def __init__(self, w_dim: int, spec: LayerSpec, conv_clamp: float | None = None,
                 magnitude_ema_beta: float = 0.999, use_fp16: bool = False):
        super().__init__()
        self.spec = spec
        self.use_fp16 = use_fp16
        self.w_dim = w_dim
        self.is_torgb = spec.is_torgb
        self.conv_kernel = spec.conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([spec.out_channels, spec.in_channels,
                                                spec.conv_kernel, spec.conv_kernel]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))
        up, down = layer_filters(spec)
        self.register_buffer('up_filter', up)
        self.register_buffer('down_filter', down)

    def forward(self, x: torch.Tensor, w: torch.Tensor, update_emas: bool = False,
                force_fp32: bool = False) -> torch.Tensor:
        spec = self.spec
        if update_emas:
            with torch.no_grad():
                mean_sq = x.detach().to(torch.float32).square().mean()
                self.magnitude_ema.copy_(mean_sq.lerp(self.magnitude_ema,
                                                      self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(spec.in_channels * spec.conv_kernel ** 2)
        if self.use_fp16 and not force_fp32 and half_precision_on(x.device):
            x = x.to(torch.float16)
        elif x.dtype == torch.float16:  # the output of a float16 layer
            x = x.to(torch.float32)
        x = modulated_conv2d(x, self.weight, styles, padding=spec.conv_kernel - 1,
                             demodulate=not self.is_torgb, input_gain=input_gain)
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias.to(x.dtype),
                              up=spec.up_factor, down=spec.down_factor, padding=spec.padding,
                              gain=1 if self.is_torgb else math.sqrt(2),
                              slope=1 if self.is_torgb else 0.2, clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        s = self.spec
        return (f'{s.in_channels} -> {s.out_channels}, size {s.in_size} -> {s.out_size}, '
                f'up {s.up_factor}, down {s.down_factor}, kernel {s.conv_kernel}, '
                f'use_fp16={self.use_fp16}')


class SynthesisNetwork(nn.Module):
    """Fourier input, ``num_layers`` synthesis layers and ToRGB; one w per module.

    As officially, the layers whose output sampling rate times ``2 ** num_fp16_res`` exceeds
    the image resolution (the high-resolution end) compute in float16 on CUDA, and every layer,
    ToRGB included, clamps its output to ``[-conv_clamp, conv_clamp]``.
    """

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int,
                 channel_base: int = 32768, channel_max: int = 512, num_layers: int = 14,
                 num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2 ** 2.1, last_stopband_rel: float = 2 ** 0.3,
                 margin_size: int = 10, output_scale: float = 0.25, filter_size: int = 6,
                 lrelu_upsampling: int = 2, conv_kernel: int = 3,
                 use_radial_filters: bool = False, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999, num_fp16_res: int = 4):
        super().__init__()
        if num_fp16_res < 0:
            raise ValueError(f'num_fp16_res must be >= 0, got {num_fp16_res}')
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res
        input_spec, specs = layer_specs(
            img_resolution=img_resolution, img_channels=img_channels,
            channel_base=channel_base, channel_max=channel_max, num_layers=num_layers,
            num_critical=num_critical, first_cutoff=first_cutoff,
            first_stopband=first_stopband, last_stopband_rel=last_stopband_rel,
            margin_size=margin_size, filter_size=filter_size,
            lrelu_upsampling=lrelu_upsampling, conv_kernel=conv_kernel,
            use_radial_filters=use_radial_filters)
        self.num_ws = num_layers + 2
        self.input = SynthesisInput(w_dim, input_spec)
        self.layer_names = []
        for spec in specs:
            use_fp16 = spec.out_sampling_rate * 2 ** num_fp16_res > img_resolution
            setattr(self, spec.name, SynthesisLayer(w_dim, spec, conv_clamp=conv_clamp,
                                                    magnitude_ema_beta=magnitude_ema_beta,
                                                    use_fp16=use_fp16))
            self.layer_names.append(spec.name)

    def forward(self, ws: torch.Tensor, update_emas: bool = False,
                noise_mode: str = 'const', force_fp32: bool = False) -> torch.Tensor:
        """Float32 images ``[N, img_channels, img_resolution, img_resolution]`` for ``ws``;
        ``force_fp32`` keeps every layer in float32; ``noise_mode`` is ignored (no noise
        inputs)."""
        del noise_mode
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f'ws must have shape [N, {self.num_ws}, {self.w_dim}], '
                             f'got {list(ws.shape)}')
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, update_emas=update_emas, force_fp32=force_fp32)
        x = x * self.output_scale
        return x.to(torch.float32) if x.dtype == torch.float16 else x


class Generator(nn.Module):
    """StyleGAN3 generator: ``z`` (and ``c``) -> mapping -> ``ws`` -> synthesis -> image."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, img_resolution: int,
                 img_channels: int, mapping_kwargs: dict | None = None, **synthesis_kwargs):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution,
                                          img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        mapping_kwargs = dict(mapping_kwargs or {})
        mapping_kwargs.setdefault('w_avg_beta', 0.998)
        mapping_kwargs.setdefault('num_layers', 2)
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws,
                                      **mapping_kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None,
                truncation_psi: float = 1, truncation_cutoff: int | None = None,
                update_emas: bool = False, noise_mode: str = 'const',
                force_fp32: bool = False) -> torch.Tensor:
        """Images for ``z`` (and ``c``). ``update_emas`` moves ``w_avg`` and every layer's
        ``magnitude_ema`` (as the official training does on the fakes shown to D);
        ``force_fp32`` turns mixed precision off; ``noise_mode`` is accepted for interface
        compatibility: StyleGAN3 has no noise."""
        del noise_mode
        ws = self.mapping(z, c, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, update_emas=update_emas)
        return self.synthesis(ws, update_emas=update_emas, force_fp32=force_fp32)

    @contextlib.contextmanager
    def image_transform(self, translate: tuple[float, float] = (0.0, 0.0),
                        rotate: float = 0.0) -> Iterator[None]:
        """Within the block the images are rotated by ``rotate`` degrees (counter-clockwise
        as displayed, about the centre), then moved by ``translate`` (image widths right,
        heights down): the core's ``TransformableGenerator`` contract, used by ``genforce
        synthesize --translate/--rotate``.

        The motion goes on top of the stored ``synthesis.input.transform`` (the identity in
        trained and converted models, where this is exactly NVIDIA's ``gen_images.py``): the
        buffer becomes ``stored @ input_transform(translate, rotate)``, and the stored value
        is put back on leaving, also after an exception.
        """
        buffer = self.synthesis.input.transform
        stored = buffer.clone()
        motion = input_transform(translate, rotate).to(device=buffer.device, dtype=buffer.dtype)
        with torch.no_grad():
            buffer.copy_(stored @ motion)
        try:
            yield
        finally:
            with torch.no_grad():
                buffer.copy_(stored)

