"""Filter design of the alias-free generator (Karras et al. 2021, section 3 and appendix F).

Every synthesis layer represents a band-limited continuous signal on a discrete grid. Across the
``num_layers`` layers the cutoff ``f_c`` grows geometrically from ``first_cutoff`` to half the
output resolution, the stopband ``f_t`` from ``first_stopband`` to ``f_c * 2**last_stopband_exp``
(the last ``num_critical`` layers are critically sampled: their cutoff is the Nyquist frequency).
The sampling rate is the smallest power of two that holds the stopband (capped at the image
resolution), the transition half-width is what is left between cutoff and the larger of stopband
and Nyquist frequency. The low-pass filters are Kaiser-windowed sinc (separable) or jinc (radial)
filters of ``filter_size * factor`` taps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class LayerSpec:
    """What one synthesis layer needs to know about its input and output signals."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: float
    out_sampling_rate: float
    tmp_sampling_rate: float
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]


@dataclass(frozen=True)
class InputSpec:
    """The Fourier-feature input: channels, grid size, sampling rate, bandwidth (= first cutoff)."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def layer_specs(*, img_resolution: int, img_channels: int,
                channel_base: int = 32768, channel_max: int = 512, num_layers: int = 14,
                num_critical: int = 2, first_cutoff: float = 2, first_stopband: float = 2 ** 2.1,
                last_stopband_rel: float = 2 ** 0.3, margin_size: int = 10,
                filter_size: int = 6, lrelu_upsampling: int = 2, conv_kernel: int = 3,
                use_radial_filters: bool = False) -> tuple[InputSpec, list[LayerSpec]]:
    """The Fourier input and the ``num_layers + 1`` layers (the last one is ToRGB)."""
    if num_layers < num_critical + 1 or num_critical < 1:
        raise ValueError(f'need num_layers > num_critical >= 1, got {num_layers}, {num_critical}')
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    # Position of each layer's output on the geometric ramp; the last layers stay at the top.
    ramp = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** ramp
    stopbands = first_stopband * (last_stopband / first_stopband) ** ramp
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin_size * 2
    sizes[-2:] = img_resolution  # the last layer and ToRGB produce the image, no margin
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels

    inp = InputSpec(channels=int(channels[0]), size=int(sizes[0]),
                    sampling_rate=float(rates[0]), bandwidth=float(cutoffs[0]))
    specs = []
    for idx in range(num_layers + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == num_layers
        critical = idx >= num_layers - num_critical
        in_rate, out_rate = float(rates[prev]), float(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else lrelu_upsampling)
        up = int(round(tmp_rate / in_rate))
        down = int(round(tmp_rate / out_rate))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        specs.append(LayerSpec(
            name=f'L{idx}_{out_size}_{int(channels[idx])}', is_torgb=is_torgb,
            is_critically_sampled=critical,
            in_channels=int(channels[prev]), out_channels=int(channels[idx]),
            in_size=in_size, out_size=out_size, in_sampling_rate=in_rate,
            out_sampling_rate=out_rate, tmp_sampling_rate=tmp_rate,
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            conv_kernel=1 if is_torgb else conv_kernel, up_factor=up, down_factor=down,
            up_taps=up_taps, down_taps=down_taps,
            down_radial=use_radial_filters and not critical,
            padding=layer_padding(in_size, out_size, up, down, up_taps, down_taps,
                                  1 if is_torgb else conv_kernel)))
    return inp, specs


def layer_padding(in_size: int, out_size: int, up: int, down: int, up_taps: int,
                  down_taps: int, conv_kernel: int) -> tuple[int, int, int, int]:
    """``[x0, x1, y0, y1]`` padding of the zero-inserted signal so that the layer's output
    (``out_size`` pixels) is centred on its input.

    The modulated convolution is a full one (``in_size + conv_kernel - 1`` pixels, same centre).
    In zero-inserted coordinates input pixel ``i`` sits at ``i * up``; after padding by ``x0``
    and the two valid filter passes, output pixel ``o`` sits at
    ``o * down + (down_taps - 1) / 2 + (up_taps - 1) / 2 - x0``. Equating the two centres gives
    ``x0``; ``x1`` makes the temporary signal exactly as long as the downsampling pass needs.
    """
    size = in_size + conv_kernel - 1
    before2 = (out_size - 1) * down + (down_taps - 1) + (up_taps - 1) - (size - 1) * up
    if before2 % 2:
        raise ValueError(f'layer geometry has no centred padding: in {in_size}, out {out_size}, '
                         f'up {up}, down {down}, taps {up_taps}/{down_taps}')
    before = before2 // 2
    after = (out_size - 1) * down + down_taps + up_taps - 1 - size * up - before
    return (before, after, before, after)


def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser's empirical window parameter for a transition of ``width`` (in units of the
    Nyquist frequency) and ``numtaps`` taps: attenuation
    ``A = 2.285 (numtaps - 1) pi width + 7.95`` dB, then Kaiser's beta(A)."""
    atten = 2.285 * (numtaps - 1) * math.pi * width + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                   radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed ideal low-pass filter with unit DC gain, as float32.

    ``cutoff`` and ``width`` (the full transition width) are in the units of the sampling rate
    ``fs``. Separable filters are 1-D ``[numtaps]`` (windowed sinc); radial ones are 2-D
    ``[numtaps, numtaps]`` (windowed jinc, the ideal circularly symmetric low-pass, with the
    separable 2-D Kaiser window). One tap means no filtering: None.
    """
    if numtaps < 1:
        raise ValueError(f'numtaps must be >= 1, got {numtaps}')
    if numtaps == 1:
        return None
    nyquist = fs / 2
    beta = _kaiser_beta(numtaps, width / nyquist)
    window = np.kaiser(numtaps, beta)
    offsets = np.arange(numtaps) - (numtaps - 1) / 2  # tap positions in samples
    if not radial:
        taps = np.sinc(2 * cutoff / fs * offsets) * window
    else:
        radius = np.hypot(*np.meshgrid(offsets, offsets)) * (2 * cutoff / fs)
        taps = _jinc(radius) * np.outer(window, window)
    return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)


def _jinc(x: np.ndarray) -> np.ndarray:
    """``2 J1(pi x) / (pi x)``, 1 at 0: the radial profile of the ideal disc low-pass."""
    arg = torch.as_tensor(np.pi * x, dtype=torch.float64)
    safe = torch.where(arg == 0, torch.ones_like(arg), arg)
    out = torch.where(arg == 0, torch.ones_like(arg), 2 * torch.special.bessel_j1(safe) / safe)
    return out.numpy()


def layer_filters(spec: LayerSpec) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The up- and downsampling filters of one layer (None where the layer has none).

    The upsampling filter removes the images of the input spectrum above the input cutoff;
    the downsampling filter band-limits the nonlinearity's output to the output cutoff, both
    designed at the temporary (upsampled) rate.
    """
    up = lowpass_filter(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2,
                        spec.tmp_sampling_rate)
    down = lowpass_filter(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                          spec.tmp_sampling_rate, radial=spec.down_radial)
    return up, down
