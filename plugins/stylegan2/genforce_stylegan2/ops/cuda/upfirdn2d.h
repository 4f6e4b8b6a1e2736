// upfirdn2d: zero-insertion upsampling, padding (negative = crop), 2D FIR filtering,
// downsampling and a gain, fused into one CUDA kernel. See upfirdn2d.cu for the math.
#pragma once

#include <ATen/ATen.h>

namespace genforce {

// x: [N, C, H, W] CUDA tensor; f: [fh, fw] filter (any floating dtype, same device).
// Returns y with y[n, c, oy, ox] = gain * sum_{i, j} w[i, j] * xu[oy * downy + i - pady0,
// ox * downx + j - padx0], where xu is x upsampled by inserting zeros (xu[u, v] =
// x[u / upy, v / upx] when both divide exactly, else 0) and w = f flipped in both axes unless
// flip_filter (i.e. a true convolution with f by default).
at::Tensor upfirdn2d(const at::Tensor& x, const at::Tensor& f, int64_t upx, int64_t upy,
                     int64_t downx, int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0,
                     int64_t pady1, bool flip_filter, double gain);

}  // namespace genforce
