// filtered_lrelu: upsample, bias, leaky ReLU with gain and clamp, downsample, fused in one CUDA
// kernel (StyleGAN3's alias-free nonlinearity). See filtered_lrelu_tile.h for the math.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace genforce_stylegan3 {

// x: [N, C, in_h, in_w] CUDA tensor (float, double or half). fu, fd: correlation taps, 1-D
// (separable) or 2-D, on x's device. bias: [C] or empty. mode 0 (leaky ReLU with gain, slope and
// clamp; clamp < 0: none) returns y and, when write_mask, the uint8 mask [N, C, mid_h, mid_w]
// of the derivative classes; mode 1 multiplies by mult[mask_in] instead (mask_in: that mask).
// Returns (y [N, C, out_h, out_w], mask or an empty tensor).
std::vector<at::Tensor> filtered_lrelu(const at::Tensor& x, const at::Tensor& fu,
                                       const at::Tensor& fd, const at::Tensor& bias,
                                       const at::Tensor& mask_in, int64_t up, int64_t down,
                                       int64_t pu_x, int64_t pu_y, int64_t qd_x, int64_t qd_y,
                                       int64_t mid_h, int64_t mid_w, int64_t out_h,
                                       int64_t out_w, double up_gain, int64_t mode, double gain,
                                       double slope, double clamp,
                                       const std::vector<double>& mult, bool write_mask);

// The tile the kernel uses for these filter sizes and factors: (tile_h, tile_w, shared memory
// bytes); (0, 0, 0) when no tile fits in the shared memory of a block.
std::tuple<int64_t, int64_t, int64_t> tile_plan(int64_t fu_h, int64_t fu_w, bool fu_separable,
                                                int64_t fd_h, int64_t fd_w, bool fd_separable,
                                                int64_t up, int64_t down, int64_t out_h,
                                                int64_t out_w, int64_t elem_size);

}  // namespace genforce_stylegan3
