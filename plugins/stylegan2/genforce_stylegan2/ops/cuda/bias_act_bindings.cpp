// Python bindings of the genforce bias_act CUDA kernel.
#include <torch/extension.h>

#include "bias_act.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("bias_act", &genforce::bias_act,
        "fused bias + activation + gain + clamp (mode 0) and its derivatives (modes 1, 2)",
        py::arg("x"), py::arg("b"), py::arg("g1"), py::arg("g2"), py::arg("mode"),
        py::arg("act"), py::arg("dim"), py::arg("alpha"), py::arg("gain"), py::arg("clamp"));
}
