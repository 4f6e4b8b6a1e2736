// Python bindings of the genforce upfirdn2d CUDA kernel.
#include <torch/extension.h>

#include "upfirdn2d.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("upfirdn2d", &genforce::upfirdn2d,
        "upsample (zero insertion), pad, FIR-filter, downsample and scale an NCHW tensor",
        py::arg("x"), py::arg("f"), py::arg("upx"), py::arg("upy"), py::arg("downx"),
        py::arg("downy"), py::arg("padx0"), py::arg("padx1"), py::arg("pady0"),
        py::arg("pady1"), py::arg("flip_filter"), py::arg("gain"));
}
