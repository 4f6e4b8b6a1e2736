// blur2d CUDA kernel, written for genforce from the definition of the op:
//
//   y[n, c, i, j] = sum_{a < fh, b < fw} w[a, b] * x[n, c, i + a - fh / 2, j + b - fw / 2]
//   w             = f flipped in both axes unless flip_filter; x = 0 outside the image
//
// The filter is the same for every channel (depthwise) and the output has the input's size.
// The op is linear in x and its adjoint is the same op with the flipped filter, so the Python
// autograd Function calls this kernel for gradients of every order. One thread computes one
// output element; the filter (a few taps) is read through the cache. Accumulation is in float
// (double for double inputs).

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>

#include "blur2d.h"

namespace genforce_stylegan {
namespace {

constexpr int kThreads = 256;

struct Blur2dParams {
  int64_t total;  // N * C * H * W
  int64_t h, w;
  int fh, fw;
};

template <typename scalar_t, typename acc_t>
__global__ void blur2d_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ w,
                              scalar_t* __restrict__ y, const Blur2dParams p) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       idx < p.total; idx += stride) {
    const int64_t j = idx % p.w;
    const int64_t i = (idx / p.w) % p.h;
    const int64_t plane = idx / (p.w * p.h);  // n * C + c
    const scalar_t* xp = x + plane * p.h * p.w;
    acc_t acc = 0;
    for (int a = 0; a < p.fh; ++a) {
      const int64_t u = i + a - p.fh / 2;
      if (u < 0 || u >= p.h) continue;
      for (int b = 0; b < p.fw; ++b) {
        const int64_t v = j + b - p.fw / 2;
        if (v < 0 || v >= p.w) continue;
        acc += w[a * p.fw + b] * static_cast<acc_t>(xp[u * p.w + v]);
      }
    }
    y[idx] = static_cast<scalar_t>(acc);
  }
}

}  // namespace

at::Tensor blur2d(const at::Tensor& x, const at::Tensor& f, bool flip_filter) {
  TORCH_CHECK(x.is_cuda(), "blur2d: x must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK(x.is_floating_point(), "blur2d: x must be floating-point, got ", x.scalar_type());
  TORCH_CHECK(x.dim() == 4, "blur2d: x must be [N, C, H, W], got ", x.dim(), " dimensions");
  TORCH_CHECK(f.dim() == 2, "blur2d: f must be [fh, fw], got ", f.dim(), " dimensions");
  TORCH_CHECK(f.device() == x.device(), "blur2d: f must be on ", x.device());
  TORCH_CHECK(f.size(0) % 2 == 1 && f.size(1) % 2 == 1,
              "blur2d: the filter sizes must be odd, got ", f.sizes());
  TORCH_CHECK(x.numel() < (int64_t(1) << 62), "blur2d: x is too large");
  const at::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty_like(xc, at::MemoryFormat::Contiguous);
  if (y.numel() == 0) return y;

  Blur2dParams p;
  p.total = xc.numel();
  p.h = xc.size(2);
  p.w = xc.size(3);
  p.fh = static_cast<int>(f.size(0));
  p.fw = static_cast<int>(f.size(1));
  const int64_t blocks64 = std::min<int64_t>((p.total + kThreads - 1) / kThreads, 65535LL * 8);
  const unsigned int blocks = static_cast<unsigned int>(std::max<int64_t>(blocks64, 1));
  auto stream = at::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, xc.scalar_type(), "blur2d", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::Tensor wt = flip_filter ? f : f.flip({0, 1});
    wt = wt.to(c10::CppTypeToScalarType<acc_t>::value).contiguous();
    blur2d_kernel<scalar_t, acc_t><<<blocks, kThreads, 0, stream>>>(
        xc.data_ptr<scalar_t>(), wt.data_ptr<acc_t>(), y.data_ptr<scalar_t>(), p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

}  // namespace genforce_stylegan
