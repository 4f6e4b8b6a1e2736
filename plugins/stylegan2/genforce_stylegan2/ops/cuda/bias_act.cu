// bias_act CUDA kernels, written for genforce from the definition of the op:
//
//   z = x + b (b broadcast along dimension `dim`),  v = act(z) * gain,
//   y = clamp(v, -clamp, clamp)   (no clamp when clamp < 0)
//
// and its derivatives, with m = [|v| <= clamp] (the clamp passes gradients only where it did
// not saturate; m = 1 without clamp):
//
//   dL/dz          = dL/dy * gain * act'(z) * m                      (mode 1)
//   d(mode 1)/dz   = g1 * g2 * gain * act''(z) * m                   (mode 2; m is piecewise
//                                                                    constant, so no term)
//
// Activations a(z) and their derivatives (s = sigmoid(z)):
//   linear   z                     1                            0
//   relu     max(z, 0)             [z > 0]                      0
//   lrelu    z > 0 ? z : alpha z   z > 0 ? 1 : alpha            0
//   tanh     t = tanh z            1 - t^2                      -2 t (1 - t^2)
//   sigmoid  s                     s (1 - s)                    s (1 - s)(1 - 2 s)
//   elu      z > 0 ? z : e^z - 1   z > 0 ? 1 : e^z              z > 0 ? 0 : e^z
//   selu     L * elu_A(z)          L * (z > 0 ? 1 : A e^z)      z > 0 ? 0 : L A e^z
//   softplus log(1 + e^z)          s                            s (1 - s)
//            (z > 20: z and 1 and 0, like torch's threshold)
//   swish    z s                   s (1 + z (1 - s))            s (1 - s)(2 + z (1 - 2 s))

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "bias_act.h"
#include "common.h"

namespace genforce {
namespace {

template <typename T>
__device__ __forceinline__ T sigmoid_of(T z) {
  return T(1) / (T(1) + exp(-z));
}

// Value (order 0), first (order 1) or second (order 2) derivative of the activation at z.
template <int A, int Order, typename T>
__device__ __forceinline__ T act_eval(T z, T alpha) {
  constexpr double kSeluLambda = 1.0507009873554804934193349852946;
  constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
  if (A == kLinear) {
    return Order == 0 ? z : (Order == 1 ? T(1) : T(0));
  } else if (A == kRelu) {
    if (Order == 0) return z > T(0) ? z : T(0);
    return Order == 1 ? (z > T(0) ? T(1) : T(0)) : T(0);
  } else if (A == kLrelu) {
    if (Order == 0) return z > T(0) ? z : z * alpha;
    return Order == 1 ? (z > T(0) ? T(1) : alpha) : T(0);
  } else if (A == kTanh) {
    const T t = tanh(z);
    if (Order == 0) return t;
    const T d = T(1) - t * t;
    return Order == 1 ? d : T(-2) * t * d;
  } else if (A == kSigmoid) {
    const T s = sigmoid_of(z);
    if (Order == 0) return s;
    const T d = s * (T(1) - s);
    return Order == 1 ? d : d * (T(1) - T(2) * s);
  } else if (A == kElu) {
    if (z > T(0)) return Order == 0 ? z : (Order == 1 ? T(1) : T(0));
    const T e = exp(z);
    return Order == 0 ? e - T(1) : e;
  } else if (A == kSelu) {
    const T lam = T(kSeluLambda), a = T(kSeluAlpha);
    if (z > T(0)) return Order == 0 ? lam * z : (Order == 1 ? lam : T(0));
    const T e = exp(z);
    return Order == 0 ? lam * a * (e - T(1)) : lam * a * e;
  } else if (A == kSoftplus) {
    if (z > T(20)) return Order == 0 ? z : (Order == 1 ? T(1) : T(0));
    if (Order == 0) return log1p(exp(z));
    const T s = sigmoid_of(z);
    return Order == 1 ? s : s * (T(1) - s);
  } else {  // kSwish
    const T s = sigmoid_of(z);
    if (Order == 0) return z * s;
    if (Order == 1) return s * (T(1) + z * (T(1) - s));
    return s * (T(1) - s) * (T(2) + z * (T(1) - T(2) * s));
  }
}

struct BiasActParams {
  int64_t n;         // number of elements of x
  int64_t inner;     // product of the sizes after `dim`
  int64_t channels;  // size of `dim` (length of b)
  bool has_bias;
  int mode;
};

template <typename scalar_t, typename acc_t, int A>
__global__ void bias_act_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ b,
                                const scalar_t* __restrict__ g1,
                                const scalar_t* __restrict__ g2, scalar_t* __restrict__ out,
                                const BiasActParams p, const acc_t alpha, const acc_t gain,
                                const acc_t clamp) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.n;
       i += stride) {
    acc_t z = static_cast<acc_t>(x[i]);
    if (p.has_bias) z += static_cast<acc_t>(b[(i / p.inner) % p.channels]);
    if (p.mode == 0) {
      acc_t v = act_eval<A, 0>(z, alpha) * gain;
      if (clamp >= acc_t(0)) v = v > clamp ? clamp : (v < -clamp ? -clamp : v);
      out[i] = static_cast<scalar_t>(v);
      continue;
    }
    if (clamp >= acc_t(0)) {
      const acc_t v = act_eval<A, 0>(z, alpha) * gain;
      if (v > clamp || v < -clamp) {  // saturated: no gradient flows
        out[i] = static_cast<scalar_t>(0);
        continue;
      }
    }
    if (p.mode == 1) {
      out[i] = static_cast<scalar_t>(static_cast<acc_t>(g1[i]) * gain * act_eval<A, 1>(z, alpha));
    } else {
      out[i] = static_cast<scalar_t>(static_cast<acc_t>(g1[i]) * static_cast<acc_t>(g2[i]) *
                                     gain * act_eval<A, 2>(z, alpha));
    }
  }
}

template <typename scalar_t, typename acc_t, int A>
void launch(const at::Tensor& x, const at::Tensor& b, const at::Tensor& g1, const at::Tensor& g2,
            at::Tensor& out, const BiasActParams& p, double alpha, double gain, double clamp) {
  const auto stream = c10::cuda::getCurrentCUDAStream();
  bias_act_kernel<scalar_t, acc_t, A><<<num_blocks(p.n), kThreads, 0, stream>>>(
      x.data_ptr<scalar_t>(), p.has_bias ? b.data_ptr<scalar_t>() : nullptr,
      p.mode >= 1 ? g1.data_ptr<scalar_t>() : nullptr,
      p.mode == 2 ? g2.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(), p,
      static_cast<acc_t>(alpha), static_cast<acc_t>(gain), static_cast<acc_t>(clamp));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace

at::Tensor bias_act(const at::Tensor& x_in, const at::Tensor& b_in, const at::Tensor& g1_in,
                    const at::Tensor& g2_in, int64_t mode, int64_t act, int64_t dim,
                    double alpha, double gain, double clamp) {
  GENFORCE_CHECK_CUDA(x_in, "bias_act: x");
  GENFORCE_CHECK_FLOAT(x_in, "bias_act: x");
  TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2, got ", mode);
  TORCH_CHECK(act >= kLinear && act <= kSwish, "bias_act: unknown activation id ", act);
  const c10::cuda::CUDAGuard device_guard(x_in.device());
  const at::Tensor x = x_in.contiguous();

  BiasActParams p;
  p.n = x.numel();
  p.mode = static_cast<int>(mode);
  p.has_bias = b_in.defined() && b_in.numel() > 0;
  p.inner = 1;
  p.channels = 1;
  at::Tensor b;
  if (p.has_bias) {
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "bias_act: dim ", dim, " out of range for x of rank ",
                x.dim());
    TORCH_CHECK(b_in.dim() == 1 && b_in.size(0) == x.size(dim), "bias_act: b must have shape [",
                x.size(dim), "], got ", b_in.sizes());
    TORCH_CHECK(b_in.device() == x.device(), "bias_act: b must be on the device of x");
    b = b_in.to(x.scalar_type()).contiguous();
    p.channels = x.size(dim);
    for (int64_t d = dim + 1; d < x.dim(); ++d) p.inner *= x.size(d);
  }
  at::Tensor g1, g2;
  if (mode >= 1) {
    TORCH_CHECK(g1_in.defined() && g1_in.sizes() == x.sizes(),
                "bias_act: the incoming gradient must have the shape of x");
    g1 = g1_in.to(x.scalar_type()).contiguous();
  }
  if (mode == 2) {
    TORCH_CHECK(g2_in.defined() && g2_in.sizes() == x.sizes(),
                "bias_act: the second incoming gradient must have the shape of x");
    g2 = g2_in.to(x.scalar_type()).contiguous();
  }

  at::Tensor out = at::empty_like(x);
  if (p.n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "bias_act", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    switch (act) {
      case kLinear: launch<scalar_t, acc_t, kLinear>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kRelu: launch<scalar_t, acc_t, kRelu>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kLrelu: launch<scalar_t, acc_t, kLrelu>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kTanh: launch<scalar_t, acc_t, kTanh>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kSigmoid: launch<scalar_t, acc_t, kSigmoid>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kElu: launch<scalar_t, acc_t, kElu>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kSelu: launch<scalar_t, acc_t, kSelu>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      case kSoftplus: launch<scalar_t, acc_t, kSoftplus>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
      default: launch<scalar_t, acc_t, kSwish>(x, b, g1, g2, out, p, alpha, gain, clamp); break;
    }
  });
  return out;
}

}  // namespace genforce
