"""Custom ops of the StyleGAN2 family.

* :mod:`.upfirdn2d` -- upsample, FIR-filter, downsample (``setup_filter``, ``upfirdn2d``,
  ``filter2d``, ``upsample2d``, ``downsample2d``).
* :mod:`.bias_act` -- bias, activation, gain and clamp fused.
* :mod:`.conv2d_gradfix` -- convolutions with double backward and ``no_weight_gradients()``.
* :mod:`.conv2d_resample` -- convolution combined with FIR resampling.

Every op has a pure-PyTorch reference path. ``upfirdn2d`` and ``bias_act`` take
``impl='cuda'`` by default: for CUDA tensors they use the kernels of ``upfirdn2d_cuda`` /
``bias_act_cuda`` when those load, and otherwise warn once and use the reference path.
Their ``.cu``/``.cpp``/``.h`` sources ship in ``ops/cuda/`` as package data (see
``pyproject.toml``), to be compiled just in time by the core's ops helper.
"""
