// Python bindings of the genforce StyleGAN3 filtered_lrelu CUDA kernel.
#include <torch/extension.h>

#include "filtered_lrelu.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("filtered_lrelu", &genforce_stylegan3::filtered_lrelu,
        "upsample (FIR), leaky ReLU with gain and clamp (or a recorded mask), downsample (FIR) "
        "of an NCHW tensor; returns [y, mask]",
        py::arg("x"), py::arg("fu"), py::arg("fd"), py::arg("bias"), py::arg("mask_in"),
        py::arg("up"), py::arg("down"), py::arg("pu_x"), py::arg("pu_y"), py::arg("qd_x"),
        py::arg("qd_y"), py::arg("mid_h"), py::arg("mid_w"), py::arg("out_h"), py::arg("out_w"),
        py::arg("up_gain"), py::arg("mode"), py::arg("gain"), py::arg("slope"),
        py::arg("clamp"), py::arg("mult"), py::arg("write_mask"));
  m.def("tile_plan", &genforce_stylegan3::tile_plan,
        "(tile_h, tile_w, shared bytes) of the kernel for these filters; zeros if none fits",
        py::arg("fu_h"), py::arg("fu_w"), py::arg("fu_separable"), py::arg("fd_h"),
        py::arg("fd_w"), py::arg("fd_separable"), py::arg("up"), py::arg("down"),
        py::arg("out_h"), py::arg("out_w"), py::arg("elem_size"));
}
