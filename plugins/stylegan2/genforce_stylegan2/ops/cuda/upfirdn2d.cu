// upfirdn2d CUDA kernel, written for genforce from the definition of the op:
//
//   xu[u, v]   = x[u / upy, v / upx]   if upy | u and upx | v (zero insertion), else 0,
//                for 0 <= u < H * upy, 0 <= v < W * upx (0 outside: padding; negative
//                padding simply shifts the window so that rows/columns are cropped)
//   y[oy, ox]  = gain * sum_{i < fh, j < fw} w[i, j] * xu[oy * downy + i - pady0,
//                                                          ox * downx + j - padx0]
//   w          = f flipped in both axes unless flip_filter
//   oh         = (H * upy + pady0 + pady1 - fh) / downy + 1   (same for ow)
//
// One thread computes one output element and visits only the filter taps that land on a
// non-zero sample of xu: along each axis, the taps i with (oy * downy - pady0 + i) divisible by
// up, i.e. every up-th tap from the first such one.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "common.h"
#include "upfirdn2d.h"

namespace genforce {
namespace {

struct Upfirdn2dParams {
  int64_t total;  // N * C * oh * ow
  int64_t in_h, in_w, out_h, out_w;
  int upx, upy, downx, downy;
  int padx0, pady0;
  int fh, fw;
};

// First tap index t >= 0 such that (base + t) is a non-negative multiple of up.
__device__ __forceinline__ int first_tap(int64_t base, int up) {
  if (base >= 0) {
    const int r = static_cast<int>(base % up);
    return r == 0 ? 0 : up - r;
  }
  // base < 0: the first admissible position is u = 0, reached at t = -base.
  return static_cast<int>(-base);
}

template <typename scalar_t, typename acc_t>
__global__ void upfirdn2d_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ w,
                                 scalar_t* __restrict__ y, const Upfirdn2dParams p) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       idx < p.total; idx += stride) {
    const int64_t ox = idx % p.out_w;
    const int64_t t = idx / p.out_w;
    const int64_t oy = t % p.out_h;
    const int64_t nc = t / p.out_h;
    const scalar_t* xp = x + nc * p.in_h * p.in_w;

    const int64_t by = oy * p.downy - p.pady0;  // xu row of tap i is by + i
    const int64_t bx = ox * p.downx - p.padx0;  // xu column of tap j is bx + j
    const int i0 = first_tap(by, p.upy);
    const int j0 = first_tap(bx, p.upx);

    acc_t sum = acc_t(0);
    for (int i = i0; i < p.fh; i += p.upy) {
      const int64_t iy = (by + i) / p.upy;
      if (iy >= p.in_h) break;
      const scalar_t* row = xp + iy * p.in_w;
      const acc_t* wrow = w + static_cast<int64_t>(i) * p.fw;
      for (int j = j0; j < p.fw; j += p.upx) {
        const int64_t ix = (bx + j) / p.upx;
        if (ix >= p.in_w) break;
        sum += static_cast<acc_t>(row[ix]) * wrow[j];
      }
    }
    y[idx] = static_cast<scalar_t>(sum);
  }
}

}  // namespace

at::Tensor upfirdn2d(const at::Tensor& x_in, const at::Tensor& f, int64_t upx, int64_t upy,
                     int64_t downx, int64_t downy, int64_t padx0, int64_t padx1, int64_t pady0,
                     int64_t pady1, bool flip_filter, double gain) {
  GENFORCE_CHECK_CUDA(x_in, "upfirdn2d: x");
  GENFORCE_CHECK_CUDA(f, "upfirdn2d: f");
  GENFORCE_CHECK_FLOAT(x_in, "upfirdn2d: x");
  GENFORCE_CHECK_FLOAT(f, "upfirdn2d: f");
  TORCH_CHECK(x_in.dim() == 4, "upfirdn2d: x must be [N, C, H, W], got ", x_in.sizes());
  TORCH_CHECK(f.dim() == 2, "upfirdn2d: f must be [fh, fw], got ", f.sizes());
  TORCH_CHECK(x_in.device() == f.device(), "upfirdn2d: x and f must be on the same device");
  TORCH_CHECK(upx >= 1 && upy >= 1, "upfirdn2d: up must be >= 1");
  TORCH_CHECK(downx >= 1 && downy >= 1, "upfirdn2d: down must be >= 1");
  TORCH_CHECK(f.size(0) >= 1 && f.size(1) >= 1, "upfirdn2d: empty filter");

  const c10::cuda::CUDAGuard device_guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t fh = f.size(0), fw = f.size(1);
  const int64_t out_h = (h * upy + pady0 + pady1 - fh) / downy + 1;
  const int64_t out_w = (wd * upx + padx0 + padx1 - fw) / downx + 1;
  TORCH_CHECK(h * upy + pady0 + pady1 >= fh && wd * upx + padx0 + padx1 >= fw && out_h >= 1 &&
                  out_w >= 1,
              "upfirdn2d: the padded, upsampled input (", h * upy + pady0 + pady1, "x",
              wd * upx + padx0 + padx1, ") is smaller than the filter (", fh, "x", fw, ")");
  TORCH_CHECK(fh <= INT32_MAX && fw <= INT32_MAX && upx <= INT32_MAX && upy <= INT32_MAX &&
                  downx <= INT32_MAX && downy <= INT32_MAX,
              "upfirdn2d: filter size and factors must fit in int32");

  at::Tensor y = at::empty({n, c, out_h, out_w}, x.options());
  if (y.numel() == 0) return y;

  Upfirdn2dParams p;
  p.total = y.numel();
  p.in_h = h;
  p.in_w = wd;
  p.out_h = out_h;
  p.out_w = out_w;
  p.upx = static_cast<int>(upx);
  p.upy = static_cast<int>(upy);
  p.downx = static_cast<int>(downx);
  p.downy = static_cast<int>(downy);
  TORCH_CHECK(padx0 >= INT32_MIN && padx0 <= INT32_MAX && pady0 >= INT32_MIN &&
                  pady0 <= INT32_MAX,
              "upfirdn2d: padding must fit in int32");
  p.padx0 = static_cast<int>(padx0);
  p.pady0 = static_cast<int>(pady0);
  p.fh = static_cast<int>(fh);
  p.fw = static_cast<int>(fw);

  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "upfirdn2d", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    // The effective correlation weights, gain folded in, in the accumulation type.
    at::Tensor w = flip_filter ? f : f.flip({0, 1});
    w = (w.to(c10::CppTypeToScalarType<acc_t>::value) * gain).contiguous();
    upfirdn2d_kernel<scalar_t, acc_t><<<num_blocks(p.total), kThreads, 0, stream>>>(
        x.data_ptr<scalar_t>(), w.data_ptr<acc_t>(), y.data_ptr<scalar_t>(), p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

}  // namespace genforce
