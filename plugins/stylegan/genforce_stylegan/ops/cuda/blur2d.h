// blur2d: a depthwise 2-D FIR filter with 'same' zero padding (StyleGAN's blur), one CUDA
// kernel. See blur2d.cu for the math.
#pragma once

#include <ATen/ATen.h>

namespace genforce_stylegan {

// x: [N, C, H, W] CUDA tensor; f: [fh, fw] filter (odd sizes, same device). Returns y of the
// shape of x with y[n, c, i, j] = sum_{a, b} w[a, b] * x[n, c, i + a - fh / 2, j + b - fw / 2]
// (x = 0 outside), where w = f flipped in both axes unless flip_filter (a true convolution with
// f by default).
at::Tensor blur2d(const at::Tensor& x, const at::Tensor& f, bool flip_filter);

}  // namespace genforce_stylegan
