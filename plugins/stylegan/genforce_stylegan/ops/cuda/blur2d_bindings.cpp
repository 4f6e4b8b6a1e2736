// Python bindings of the genforce StyleGAN blur2d CUDA kernel.
#include <torch/extension.h>

#include "blur2d.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("blur2d", &genforce_stylegan::blur2d,
        "depthwise 2-D FIR filter with 'same' zero padding of an NCHW tensor", py::arg("x"),
        py::arg("f"), py::arg("flip_filter"));
}
