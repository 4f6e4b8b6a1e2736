// bias_act: y = clamp(act(x + b) * gain, -clamp, clamp), plus the kernels of its first and
// second derivatives. See bias_act.cu for the formulas.
#pragma once

#include <ATen/ATen.h>

namespace genforce {

// Activation ids; must match the cuda_id column of activation_funcs in bias_act.py.
enum Act : int {
  kLinear = 0,
  kRelu = 1,
  kLrelu = 2,
  kTanh = 3,
  kSigmoid = 4,
  kElu = 5,
  kSelu = 6,
  kSoftplus = 7,
  kSwish = 8,
};

// mode 0: out = clamp(act(z) * gain)                    with z = x + b (b broadcast along dim)
// mode 1: out = g1 * gain * act'(z) * m                 m = 1 where |act(z) * gain| <= clamp
// mode 2: out = g1 * g2 * gain * act''(z) * m
// b, g1, g2 may be undefined/empty when unused; clamp < 0 disables the clamp.
at::Tensor bias_act(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g1,
                    const at::Tensor& g2, int64_t mode, int64_t act, int64_t dim, double alpha,
                    double gain, double clamp);

}  // namespace genforce
