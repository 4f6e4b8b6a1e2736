// filtered_lrelu CUDA kernel, written for genforce from the definition of the op (see
// filtered_lrelu_tile.h, which holds the per-block computation). One block computes a tile of
// outputs of one image plane in shared memory; blocks loop over planes along the grid's z axis.
// Three instantiations only (float, double, half; half computes in float) to keep the build
// short.

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "filtered_lrelu.h"
#include "filtered_lrelu_tile.h"

namespace genforce_stylegan3 {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxTile = 32;                // outputs per block and axis, at most
constexpr int64_t kSmemLimit = 48 * 1024;   // bytes: no opt-in needed on any device
constexpr int64_t kMaxPlanesPerGrid = 65535;

template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(kThreads)
    filtered_lrelu_kernel(const FlreluParams p, const scalar_t* __restrict__ x,
                          const acc_t* __restrict__ bias, const acc_t* __restrict__ fu,
                          const acc_t* __restrict__ fd, const uint8_t* __restrict__ mask_in,
                          uint8_t* __restrict__ mask_out, scalar_t* __restrict__ y) {
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  acc_t* smem = reinterpret_cast<acc_t*>(smem_bytes);
  for (int64_t plane = blockIdx.z; plane < p.planes; plane += gridDim.z) {
    flrelu_tile<scalar_t, acc_t>(p, x, bias, fu, fd, mask_in, mask_out, y, smem, plane,
                                 static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.x),
                                 static_cast<int>(threadIdx.x), static_cast<int>(blockDim.x));
  }
}

// Taps per axis and separability of a 1-D or 2-D filter.
void filter_shape(const at::Tensor& f, const at::Tensor& x, const char* what, int* h, int* w,
                  int* separable) {
  TORCH_CHECK(f.device() == x.device(), "filtered_lrelu: ", what, " must be on ", x.device());
  TORCH_CHECK(f.is_floating_point(), "filtered_lrelu: ", what, " must be floating-point");
  TORCH_CHECK((f.dim() == 1 || f.dim() == 2) && f.numel() > 0 && f.numel() < (1 << 16),
              "filtered_lrelu: ", what, " must be a non-empty 1-D or 2-D filter, got ",
              f.sizes());
  *separable = f.dim() == 1;
  *h = static_cast<int>(f.size(0));
  *w = static_cast<int>(f.size(f.dim() - 1));
}

constexpr int64_t kMaxSize = INT_MAX / 64;  // keeps every index product of the kernel in int

void check_size(int64_t v, const char* what) {
  TORCH_CHECK(v >= 1 && v <= kMaxSize, "filtered_lrelu: ", what, " must be in [1, ", kMaxSize,
              "], got ", v);
}

}  // namespace

std::vector<at::Tensor> filtered_lrelu(const at::Tensor& x, const at::Tensor& fu,
                                       const at::Tensor& fd, const at::Tensor& bias,
                                       const at::Tensor& mask_in, int64_t up, int64_t down,
                                       int64_t pu_x, int64_t pu_y, int64_t qd_x, int64_t qd_y,
                                       int64_t mid_h, int64_t mid_w, int64_t out_h,
                                       int64_t out_w, double up_gain, int64_t mode, double gain,
                                       double slope, double clamp,
                                       const std::vector<double>& mult, bool write_mask) {
  TORCH_CHECK(x.is_cuda(), "filtered_lrelu: x must be a CUDA tensor, got one on ", x.device());
  TORCH_CHECK(x.dim() == 4, "filtered_lrelu: x must be [N, C, H, W], got ", x.sizes());
  TORCH_CHECK(mode == kLeakyRelu || mode == kMasked, "filtered_lrelu: unknown mode ", mode);
  TORCH_CHECK(mult.size() == 4, "filtered_lrelu: mult must have 4 entries");
  TORCH_CHECK(up >= 1 && up <= 64 && down >= 1 && down <= 64,
              "filtered_lrelu: up and down must be in [1, 64], got ", up, ", ", down);
  for (int64_t v : {pu_x, pu_y, qd_x, qd_y})
    TORCH_CHECK(v > -kMaxSize && v < kMaxSize, "filtered_lrelu: offset out of range: ", v);
  check_size(x.size(2), "the input height");
  check_size(x.size(3), "the input width");
  check_size(mid_h, "the upsampled height");
  check_size(mid_w, "the upsampled width");
  check_size(out_h, "the output height");
  check_size(out_w, "the output width");
  const int64_t n = x.size(0), c = x.size(1);
  TORCH_CHECK(bias.numel() == 0 || (bias.dim() == 1 && bias.size(0) == c),
              "filtered_lrelu: bias must be [", c, "] or empty, got ", bias.sizes());
  TORCH_CHECK(bias.numel() == 0 || bias.device() == x.device(),
              "filtered_lrelu: bias must be on ", x.device());
  if (mode == kMasked) {
    TORCH_CHECK(mask_in.scalar_type() == at::kByte && mask_in.device() == x.device() &&
                    mask_in.sizes() == at::IntArrayRef({n, c, mid_h, mid_w}),
                "filtered_lrelu: mask_in must be a uint8 [", n, ", ", c, ", ", mid_h, ", ",
                mid_w, "] tensor on ", x.device());
  }

  int fu_h, fu_w, fu_sep, fd_h, fd_w, fd_sep;
  filter_shape(fu, x, "fu", &fu_h, &fu_w, &fu_sep);
  filter_shape(fd, x, "fd", &fd_h, &fd_w, &fd_sep);
  FlreluParams p = flrelu_params(
      n * c, static_cast<int>(std::max<int64_t>(c, 1)), static_cast<int>(x.size(2)),
      static_cast<int>(x.size(3)), static_cast<int>(mid_h), static_cast<int>(mid_w),
      static_cast<int>(out_h), static_cast<int>(out_w), static_cast<int>(up),
      static_cast<int>(down), fu_h, fu_w, fu_sep, fd_h, fd_w, fd_sep, static_cast<int>(pu_x),
      static_cast<int>(pu_y), static_cast<int>(qd_x), static_cast<int>(qd_y),
      static_cast<int>(mode), up_gain, gain, slope, clamp, mult.data());

  const at::cuda::CUDAGuard guard(x.device());
  const at::Tensor xc = x.contiguous();
  at::Tensor y = at::empty({n, c, out_h, out_w}, xc.options());
  const bool record = write_mask && mode == kLeakyRelu;
  at::Tensor mask_out = record ? at::zeros({n, c, mid_h, mid_w}, xc.options().dtype(at::kByte))
                               : at::empty({0}, xc.options().dtype(at::kByte));
  if (y.numel() == 0) return {y, mask_out};
  const at::Tensor mask_c = mode == kMasked ? mask_in.contiguous() : mask_in;

  AT_DISPATCH_FLOATING_TYPES_AND_HALF(xc.scalar_type(), "filtered_lrelu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const auto acc_type = c10::CppTypeToScalarType<acc_t>::value;
    TORCH_CHECK(flrelu_plan(p, static_cast<int>(sizeof(acc_t)), kSmemLimit, kMaxTile),
                "filtered_lrelu: filters of ", fu.sizes(), " and ", fd.sizes(), " taps with up ",
                up, " and down ", down, " do not fit in the shared memory of a block");
    const int64_t tiles_y = (out_h + p.tile_h - 1) / p.tile_h;
    const int64_t tiles_x = (out_w + p.tile_w - 1) / p.tile_w;
    TORCH_CHECK(tiles_y <= 65535, "filtered_lrelu: the output is too tall (", out_h, " rows)");
    const dim3 grid(static_cast<unsigned int>(tiles_x), static_cast<unsigned int>(tiles_y),
                    static_cast<unsigned int>(std::min<int64_t>(n * c, kMaxPlanesPerGrid)));
    const at::Tensor fu_c = fu.to(acc_type).contiguous();
    const at::Tensor fd_c = fd.to(acc_type).contiguous();
    const at::Tensor bias_c = bias.numel() ? bias.to(acc_type).contiguous() : bias;
    const size_t smem = static_cast<size_t>(p.smem_elems) * sizeof(acc_t);
    filtered_lrelu_kernel<scalar_t, acc_t>
        <<<grid, kThreads, smem, at::cuda::getCurrentCUDAStream()>>>(
            p, xc.data_ptr<scalar_t>(), bias.numel() ? bias_c.data_ptr<acc_t>() : nullptr,
            fu_c.data_ptr<acc_t>(), fd_c.data_ptr<acc_t>(),
            mode == kMasked ? mask_c.data_ptr<uint8_t>() : nullptr,
            record ? mask_out.data_ptr<uint8_t>() : nullptr, y.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {y, mask_out};
}

std::tuple<int64_t, int64_t, int64_t> tile_plan(int64_t fu_h, int64_t fu_w, bool fu_separable,
                                                int64_t fd_h, int64_t fd_w, bool fd_separable,
                                                int64_t up, int64_t down, int64_t out_h,
                                                int64_t out_w, int64_t elem_size) {
  TORCH_CHECK(std::min({fu_h, fu_w, fd_h, fd_w, up, down, out_h, out_w, elem_size}) >= 1 &&
                  std::max({fu_h, fu_w, fd_h, fd_w}) < (1 << 16) && up <= 64 && down <= 64 &&
                  std::max(out_h, out_w) <= kMaxSize,
              "filtered_lrelu.tile_plan: sizes out of range");
  const double mult[4] = {0, 0, 0, 0};
  FlreluParams p = flrelu_params(
      1, 1, 1, 1, 1, 1, static_cast<int>(out_h), static_cast<int>(out_w), static_cast<int>(up),
      static_cast<int>(down), static_cast<int>(fu_h), static_cast<int>(fu_w), fu_separable,
      static_cast<int>(fd_h), static_cast<int>(fd_w), fd_separable, 0, 0, 0, 0, kLeakyRelu, 1,
      1, 1, -1, mult);
  if (!flrelu_plan(p, static_cast<int>(elem_size), kSmemLimit, kMaxTile)) return {0, 0, 0};
  return {p.tile_h, p.tile_w, p.smem_elems * elem_size};
}

}  // namespace genforce_stylegan3
