// filtered_lrelu: the work of one thread block, written for genforce from the math of the op.
// Plain C++ apart from the macros below, so that the tests compile this very file on the CPU
// (one "thread" per block, blocks run one after the other) and check it without a GPU.
//
// The op, per image plane and per axis (the 2-D case is the product of two such axes):
//
//   z[t] = x[t / up] + bias   when up divides t and 0 <= t / up < in, else 0
//   U[m] = up_gain * sum_k cu[k] * z[m + k - pu]                    m in [0, mid)
//   A[m] = act(U[m])                                                (0 outside [0, mid))
//   y[o] = sum_j cd[j] * A[o * down + j - qd]                       o in [0, out)
//
// cu and cd are correlation taps (the Python side flips the filters for a true convolution),
// 1-D (the same taps on both axes, applied as two passes) or 2-D. act is
//   kLeakyRelu: clamp(gain * lrelu(U, slope), -clamp, clamp), recording in `mask_out` which
//               derivative applies at each mid-resolution sample: 2 -> gain, 1 -> gain * slope,
//               0 -> clamped (zero);
//   kMasked:    U * mult[mask_in[m]], the linear op whose adjoint gives the gradients: the
//               adjoint of this op is the same op with up/down, cu/cd (flipped) and the offsets
//               swapped (see filtered_lrelu_cuda.py), so gradients of every order use this code.
//
// A block computes a tile of tile_h x tile_w outputs of one plane in shared memory: the input
// samples the tile depends on (plus bias), the upsampling pass (two 1-D passes through `t1`, or
// one 2-D pass), the pointwise step on the a_h x a_w mid-resolution samples, then the
// downsampling pass (two 1-D passes through `t2`, or one 2-D pass). Each stage is a loop over
// its samples strided by the block size, separated by barriers. Accumulation is in acc_t
// (float, or double for double inputs).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GF_FLRELU_DEVICE __device__ __forceinline__
#define GF_FLRELU_HOST_DEVICE __host__ __device__ __forceinline__
#define GF_FLRELU_SYNC() __syncthreads()
#else
#define GF_FLRELU_DEVICE inline
#define GF_FLRELU_HOST_DEVICE inline
#define GF_FLRELU_SYNC() ((void)0)
#endif

namespace genforce_stylegan3 {

enum FlreluMode : int { kLeakyRelu = 0, kMasked = 1 };

struct FlreluParams {
  int64_t planes;  // N * C
  int channels;    // C (the bias index is plane % C)
  int in_h, in_w, mid_h, mid_w, out_h, out_w;
  int up, down;
  int fu_h, fu_w, fd_h, fd_w;  // taps per axis (a 1-D filter has fu_h == fu_w)
  int fu_separable, fd_separable;
  int pu_x, pu_y, qd_x, qd_y;  // offsets of the two passes (see above)
  int mode;                    // FlreluMode
  double up_gain, gain, slope, clamp;  // clamp < 0: no clamp
  double mult[4];                      // kMasked: multiplier of each mask value
  // The tile plan (flrelu_plan).
  int tile_h, tile_w;  // outputs per block
  int a_h, a_w;        // mid-resolution samples per block
  int i_h, i_w;        // input samples per block
  int64_t smem_elems;  // shared memory, in acc_t elements
};

GF_FLRELU_HOST_DEVICE int flrelu_taps(int h, int w, int separable) {
  return separable ? w : h * w;
}

// The parameters of one call, with the tile fields left for flrelu_plan. mult: 4 values.
inline FlreluParams flrelu_params(int64_t planes, int channels, int in_h, int in_w, int mid_h,
                                  int mid_w, int out_h, int out_w, int up, int down, int fu_h,
                                  int fu_w, int fu_separable, int fd_h, int fd_w,
                                  int fd_separable, int pu_x, int pu_y, int qd_x, int qd_y,
                                  int mode, double up_gain, double gain, double slope,
                                  double clamp, const double* mult) {
  FlreluParams p{};
  p.planes = planes;
  p.channels = channels;
  p.in_h = in_h;
  p.in_w = in_w;
  p.mid_h = mid_h;
  p.mid_w = mid_w;
  p.out_h = out_h;
  p.out_w = out_w;
  p.up = up;
  p.down = down;
  p.fu_h = fu_h;
  p.fu_w = fu_w;
  p.fu_separable = fu_separable;
  p.fd_h = fd_h;
  p.fd_w = fd_w;
  p.fd_separable = fd_separable;
  p.pu_x = pu_x;
  p.pu_y = pu_y;
  p.qd_x = qd_x;
  p.qd_y = qd_y;
  p.mode = mode;
  p.up_gain = up_gain;
  p.gain = gain;
  p.slope = slope;
  p.clamp = clamp;
  for (int i = 0; i < 4; ++i) p.mult[i] = mult[i];
  return p;
}

// Shared memory (in elements) of a tile of th x tw outputs; sets the tile fields of p.
inline int64_t flrelu_tile_size(FlreluParams& p, int th, int tw) {
  p.tile_h = th;
  p.tile_w = tw;
  p.a_h = (th - 1) * p.down + p.fd_h;
  p.a_w = (tw - 1) * p.down + p.fd_w;
  p.i_h = (p.a_h + p.fu_h - 2) / p.up + 1;
  p.i_w = (p.a_w + p.fu_w - 2) / p.up + 1;
  const int64_t taps = flrelu_taps(p.fu_h, p.fu_w, p.fu_separable) +
                       flrelu_taps(p.fd_h, p.fd_w, p.fd_separable);
  const int64_t stage_up = int64_t(p.i_h) * p.i_w + (p.fu_separable ? int64_t(p.i_h) * p.a_w : 0);
  const int64_t stage_down = p.fd_separable ? int64_t(p.a_h) * tw : 0;
  p.smem_elems = taps + int64_t(p.a_h) * p.a_w + (stage_up > stage_down ? stage_up : stage_down);
  return p.smem_elems;
}

// Choose the largest tile (up to max_tile x max_tile outputs, no larger than the output) whose
// shared memory fits in smem_limit bytes. Returns false, with tile_h = tile_w = 0, when not even
// one output per block fits (filters far longer than StyleGAN3's).
inline bool flrelu_plan(FlreluParams& p, int elem_size, int64_t smem_limit, int max_tile) {
  int th = 1, tw = 1;
  while (th < max_tile && th < p.out_h) th *= 2;
  while (tw < max_tile && tw < p.out_w) tw *= 2;
  while (flrelu_tile_size(p, th, tw) * elem_size > smem_limit) {
    if (th >= tw && th > 1) {
      th /= 2;
    } else if (tw > 1) {
      tw /= 2;
    } else {
      p.tile_h = p.tile_w = 0;
      return false;
    }
  }
  return true;
}

// floor(n / d) and the non-negative n mod d, for d > 0 and any n.
GF_FLRELU_DEVICE int flrelu_floor_div(int n, int d) { return n >= 0 ? n / d : -((-n + d - 1) / d); }
GF_FLRELU_DEVICE int flrelu_mod(int n, int d) { return n - flrelu_floor_div(n, d) * d; }

// The pointwise step at mid-resolution sample (my, mx) of `plane`, given U there.
template <typename acc_t>
GF_FLRELU_DEVICE acc_t flrelu_pointwise(const FlreluParams& p, acc_t u, int my, int mx,
                                        int64_t plane, const uint8_t* mask_in,
                                        uint8_t* mask_out, bool owned) {
  if (my < 0 || my >= p.mid_h || mx < 0 || mx >= p.mid_w) return acc_t(0);
  const int64_t at = (plane * p.mid_h + my) * p.mid_w + mx;
  if (p.mode == kMasked) return u * static_cast<acc_t>(p.mult[mask_in[at] & 3]);
  uint8_t cls = u > acc_t(0) ? 2 : 1;
  acc_t v = (u > acc_t(0) ? u : u * static_cast<acc_t>(p.slope)) * static_cast<acc_t>(p.gain);
  if (p.clamp >= 0) {
    const acc_t c = static_cast<acc_t>(p.clamp);
    if (v > c || v < -c) {  // the clamp's derivative is 1 at +-clamp itself, as in PyTorch
      v = v > c ? c : -c;
      cls = 0;
    }
  }
  if (mask_out != nullptr && owned) mask_out[at] = cls;
  return v;
}

// One tile (tile_y, tile_x) of one plane, computed by threads tid = 0 .. nthreads - 1.
// bias may be null; mask_in is read in kMasked mode, mask_out (may be null) written in
// kLeakyRelu mode. smem holds p.smem_elems elements.
template <typename scalar_t, typename acc_t>
GF_FLRELU_DEVICE void flrelu_tile(const FlreluParams& p, const scalar_t* __restrict__ x,
                                  const acc_t* __restrict__ bias, const acc_t* __restrict__ fu,
                                  const acc_t* __restrict__ fd,
                                  const uint8_t* __restrict__ mask_in,
                                  uint8_t* __restrict__ mask_out, scalar_t* __restrict__ y,
                                  acc_t* smem, int64_t plane, int tile_y, int tile_x, int tid,
                                  int nthreads) {
  const int up = p.up, down = p.down;
  const int fu_taps = flrelu_taps(p.fu_h, p.fu_w, p.fu_separable);
  const int fd_taps = flrelu_taps(p.fd_h, p.fd_w, p.fd_separable);
  acc_t* s_fu = smem;
  acc_t* s_fd = s_fu + fu_taps;
  acc_t* s_a = s_fd + fd_taps;          // [a_h][a_w] mid-resolution samples
  acc_t* s_x = s_a + p.a_h * p.a_w;     // [i_h][i_w] input samples
  acc_t* s_t1 = s_x + p.i_h * p.i_w;    // [i_h][a_w] after the horizontal upsampling pass
  acc_t* s_t2 = s_x;                    // [a_h][tile_w] after the horizontal downsampling pass

  const int oy0 = tile_y * p.tile_h, ox0 = tile_x * p.tile_w;
  const int a0y = oy0 * down - p.qd_y, a0x = ox0 * down - p.qd_x;  // first mid sample
  const int i0y = -flrelu_floor_div(p.pu_y - a0y, up);              // ceil((a0 - pu) / up)
  const int i0x = -flrelu_floor_div(p.pu_x - a0x, up);
  // Mid samples before the next tile's first one belong to this tile (the last tile: all).
  const int own_y = oy0 + p.tile_h >= p.out_h ? p.a_h : p.tile_h * down;
  const int own_x = ox0 + p.tile_w >= p.out_w ? p.a_w : p.tile_w * down;

  for (int i = tid; i < fu_taps; i += nthreads) s_fu[i] = fu[i];
  for (int i = tid; i < fd_taps; i += nthreads) s_fd[i] = fd[i];

  // Input samples (+ bias); zero outside the image.
  const acc_t b = bias != nullptr ? bias[plane % p.channels] : acc_t(0);
  const scalar_t* xp = x + plane * p.in_h * p.in_w;
  for (int idx = tid; idx < p.i_h * p.i_w; idx += nthreads) {
    const int r = idx / p.i_w, c = idx - r * p.i_w;
    const int iy = i0y + r, ix = i0x + c;
    acc_t v = acc_t(0);
    if (iy >= 0 && iy < p.in_h && ix >= 0 && ix < p.in_w)
      v = static_cast<acc_t>(xp[int64_t(iy) * p.in_w + ix]) + b;
    s_x[idx] = v;
  }
  GF_FLRELU_SYNC();

  // Upsampling pass and pointwise step: only the taps that meet a sample of x (t = m + k - pu
  // a multiple of up) are visited; (t) / up - i0 indexes the input tile.
  const acc_t up_gain = static_cast<acc_t>(p.up_gain);
  if (p.fu_separable) {
    for (int idx = tid; idx < p.i_h * p.a_w; idx += nthreads) {
      const int r = idx / p.a_w, c = idx - r * p.a_w;
      const int t0 = a0x + c - p.pu_x;
      const acc_t* row = s_x + r * p.i_w;
      acc_t acc = acc_t(0);
      for (int k = flrelu_mod(-t0, up); k < p.fu_w; k += up) acc += s_fu[k] * row[(t0 + k) / up - i0x];
      s_t1[idx] = acc;
    }
    GF_FLRELU_SYNC();
    for (int idx = tid; idx < p.a_h * p.a_w; idx += nthreads) {
      const int r = idx / p.a_w, c = idx - r * p.a_w;
      const int t0 = a0y + r - p.pu_y;
      acc_t acc = acc_t(0);
      for (int k = flrelu_mod(-t0, up); k < p.fu_h; k += up)
        acc += s_fu[k] * s_t1[((t0 + k) / up - i0y) * p.a_w + c];
      s_a[idx] = flrelu_pointwise<acc_t>(p, acc * up_gain, a0y + r, a0x + c, plane, mask_in,
                                         mask_out, r < own_y && c < own_x);
    }
  } else {
    for (int idx = tid; idx < p.a_h * p.a_w; idx += nthreads) {
      const int r = idx / p.a_w, c = idx - r * p.a_w;
      const int ty = a0y + r - p.pu_y, tx = a0x + c - p.pu_x;
      const int kx0 = flrelu_mod(-tx, up);
      acc_t acc = acc_t(0);
      for (int ky = flrelu_mod(-ty, up); ky < p.fu_h; ky += up) {
        const acc_t* row = s_x + ((ty + ky) / up - i0y) * p.i_w;
        const acc_t* taps = s_fu + ky * p.fu_w;
        for (int kx = kx0; kx < p.fu_w; kx += up) acc += taps[kx] * row[(tx + kx) / up - i0x];
      }
      s_a[idx] = flrelu_pointwise<acc_t>(p, acc * up_gain, a0y + r, a0x + c, plane, mask_in,
                                         mask_out, r < own_y && c < own_x);
    }
  }
  GF_FLRELU_SYNC();

  // Downsampling pass: output (oy0 + r, ox0 + c) reads s_a[r * down + j][c * down + j'].
  scalar_t* yp = y + plane * p.out_h * p.out_w;
  if (p.fd_separable) {
    for (int idx = tid; idx < p.a_h * p.tile_w; idx += nthreads) {
      const int r = idx / p.tile_w, c = idx - r * p.tile_w;
      const acc_t* row = s_a + r * p.a_w + c * down;
      acc_t acc = acc_t(0);
      for (int j = 0; j < p.fd_w; ++j) acc += s_fd[j] * row[j];
      s_t2[idx] = acc;
    }
    GF_FLRELU_SYNC();
    for (int idx = tid; idx < p.tile_h * p.tile_w; idx += nthreads) {
      const int r = idx / p.tile_w, c = idx - r * p.tile_w;
      const int oy = oy0 + r, ox = ox0 + c;
      if (oy >= p.out_h || ox >= p.out_w) continue;
      acc_t acc = acc_t(0);
      for (int j = 0; j < p.fd_h; ++j) acc += s_fd[j] * s_t2[(r * down + j) * p.tile_w + c];
      yp[int64_t(oy) * p.out_w + ox] = static_cast<scalar_t>(acc);
    }
  } else {
    for (int idx = tid; idx < p.tile_h * p.tile_w; idx += nthreads) {
      const int r = idx / p.tile_w, c = idx - r * p.tile_w;
      const int oy = oy0 + r, ox = ox0 + c;
      if (oy >= p.out_h || ox >= p.out_w) continue;
      acc_t acc = acc_t(0);
      for (int jy = 0; jy < p.fd_h; ++jy) {
        const acc_t* row = s_a + (r * down + jy) * p.a_w + c * down;
        const acc_t* taps = s_fd + jy * p.fd_w;
        for (int jx = 0; jx < p.fd_w; ++jx) acc += taps[jx] * row[jx];
      }
      yp[int64_t(oy) * p.out_w + ox] = static_cast<scalar_t>(acc);
    }
  }
  GF_FLRELU_SYNC();  // the next plane of this block reuses the shared memory
}

}  // namespace genforce_stylegan3
