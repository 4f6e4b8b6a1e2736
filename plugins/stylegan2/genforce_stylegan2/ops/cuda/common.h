// Shared helpers of the genforce StyleGAN2 CUDA ops (argument checks, launch geometry).
// Written for genforce from the math of each op; no third-party kernel code.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

// `what` names the argument in the message, e.g. "upfirdn2d: x".
#define GENFORCE_CHECK_CUDA(t, what) \
  TORCH_CHECK((t).is_cuda(), what " must be a CUDA tensor, got one on ", (t).device())
#define GENFORCE_CHECK_FLOAT(t, what) \
  TORCH_CHECK((t).is_floating_point(), what " must be floating-point, got ", (t).scalar_type())

namespace genforce {

constexpr int kThreads = 256;

// Number of blocks for a grid-stride loop over n elements: enough to fill the device,
// capped so that the grid size stays within the hardware limit.
inline unsigned int num_blocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535LL * 8)));
}

}  // namespace genforce
