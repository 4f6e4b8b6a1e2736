"""Custom ops of the StyleGAN2 family: none yet.

The CUDA ops land with the StyleGAN2 issue: ``upfirdn2d``, ``bias_act`` (bias, activation, gain
and clamp fused) and the convolution gradient fix needed for R1 / path-length double backprop.
Each op gets a pure-PyTorch reference implementation with the same signature, and its
``.cu``/``.cpp``/``.h`` sources ship in this folder as package data (see ``pyproject.toml``), to
be compiled just in time by the core's ops helper.
"""
