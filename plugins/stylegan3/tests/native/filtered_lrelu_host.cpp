// Test harness: the filtered_lrelu CUDA kernel's per-block code (filtered_lrelu_tile.h) run on
// the CPU in double precision, one "thread" per block and the blocks one after the other, so
// the tests check the kernel's indexing without a GPU. Shared memory is surrounded by NaN
// guards and filled with NaN before each tile: reading outside it, or before writing, shows up
// as NaN in the outputs.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "filtered_lrelu_tile.h"

using genforce_stylegan3::FlreluParams;

extern "C" {

// ints: planes, channels, in_h, in_w, mid_h, mid_w, out_h, out_w, up, down, fu_h, fu_w,
//       fu_separable, fd_h, fd_w, fd_separable, pu_x, pu_y, qd_x, qd_y, mode, max_tile,
//       smem_limit (bytes), elem_size (bytes per shared element: 4 on the GPU's float path)
// reals: up_gain, gain, slope, clamp, mult[4]
// plan (out): tile_h, tile_w, shared memory elements. Returns 0, or 1 when no tile fits.
int flrelu_host_run(const int64_t* ints, const double* reals, const double* x,
                    const double* bias, const double* fu, const double* fd,
                    const uint8_t* mask_in, uint8_t* mask_out, double* y, int64_t* plan) {
  const auto i = [&](int k) { return static_cast<int>(ints[k]); };
  FlreluParams p = genforce_stylegan3::flrelu_params(
      ints[0], i(1), i(2), i(3), i(4), i(5), i(6), i(7), i(8), i(9), i(10), i(11), i(12), i(13),
      i(14), i(15), i(16), i(17), i(18), i(19), i(20), reals[0], reals[1], reals[2], reals[3],
      reals + 4);
  if (!genforce_stylegan3::flrelu_plan(p, i(23), ints[22], i(21))) return 1;
  plan[0] = p.tile_h;
  plan[1] = p.tile_w;
  plan[2] = p.smem_elems;
  const int64_t guard = 64;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> smem(static_cast<size_t>(p.smem_elems + 2 * guard));
  const int tiles_y = (p.out_h + p.tile_h - 1) / p.tile_h;
  const int tiles_x = (p.out_w + p.tile_w - 1) / p.tile_w;
  for (int64_t plane = 0; plane < p.planes; ++plane) {
    for (int ty = 0; ty < tiles_y; ++ty) {
      for (int tx = 0; tx < tiles_x; ++tx) {
        for (double& v : smem) v = nan;
        genforce_stylegan3::flrelu_tile<double, double>(p, x, bias, fu, fd, mask_in, mask_out,
                                                        y, smem.data() + guard, plane, ty, tx,
                                                        0, 1);
      }
    }
  }
  return 0;
}

}  // extern "C"
