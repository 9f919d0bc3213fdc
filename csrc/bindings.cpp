// Python bindings of the effgan CPU kernels. Argument errors surface as ValueError / TypeError /
// RuntimeError (c10 exceptions translated by torch's pybind11 glue).
// The pybind11 casters for at::Tensor / std::optional only: torch/extension.h would also pull in
// the whole C++ frontend, which triples this file's compile time.
#include <torch/csrc/utils/pybind.h>

#include "ops.h"
#include "params.h"

namespace py = pybind11;

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "effgan fused CPU kernels; outputs are allocated by the caller and passed in";
  // Outputs of at least this many bytes are written with streaming stores (params.h); the tests
  // size their inputs from it so that both store paths stay covered.
  m.attr("STREAM_MIN_BYTES") = effgan::kStreamMinBytes;
  m.attr("SE_SCALE_FORWARD_STREAM_MIN_BYTES") = effgan::kSeScaleForwardStreamMinBytes;
  // Raises ValueError("error path probe: <n> <x>") the way every argument check raises (numbers
  // formatted into the message, a c10 exception translated to Python); effgan/_cpp_build.py calls
  // it in a child process after each build.
  m.def(
      "error_path_probe", [](int64_t n, double x) { TORCH_CHECK_VALUE(false, "error path probe: ", n, " ", x); },
      py::arg("n"), py::arg("x"));
  m.def("instance_norm_act_fwd", &effgan::instance_norm_act_fwd, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("residual"), py::arg("y"), py::arg("mean"), py::arg("rstd"), py::arg("eps"), py::arg("act"),
        py::arg("slope"), py::call_guard<py::gil_scoped_release>());
  m.def("instance_norm_act_bwd", &effgan::instance_norm_act_bwd, py::arg("dy"), py::arg("x"), py::arg("weight"),
        py::arg("bias"), py::arg("mean"), py::arg("rstd"), py::arg("dx"), py::arg("sum_dz"), py::arg("sum_dzx"),
        py::arg("act"), py::arg("slope"), py::call_guard<py::gil_scoped_release>());
  m.def("adain_fwd", &effgan::adain_fwd, py::arg("x"), py::arg("style_scale"), py::arg("style_bias"),
        py::arg("noise"), py::arg("noise_weight"), py::arg("bias"), py::arg("y"), py::arg("shift"), py::arg("mean"),
        py::arg("rstd"), py::arg("eps"), py::arg("act"), py::arg("slope"), py::call_guard<py::gil_scoped_release>());
  m.def("adain_bwd", &effgan::adain_bwd, py::arg("dy"), py::arg("x"), py::arg("style_scale"), py::arg("noise"),
        py::arg("noise_weight"), py::arg("bias"), py::arg("shift"), py::arg("mean"), py::arg("rstd"), py::arg("dx"),
        py::arg("sum_dy"), py::arg("sum_dyh"), py::arg("sum_duz"), py::arg("sum_du"), py::arg("act"),
        py::arg("slope"), py::call_guard<py::gil_scoped_release>());
  m.def("cyclegan_loss_fwd", &effgan::cyclegan_loss_fwd, py::arg("preds"), py::arg("targets"),
        py::arg("pred_weights"), py::arg("xs"), py::arg("ys"), py::arg("l1_weights"), py::arg("gan_mode"),
        py::arg("out"), py::arg("signs"), py::call_guard<py::gil_scoped_release>());
  m.def("cyclegan_loss_bwd", &effgan::cyclegan_loss_bwd, py::arg("dloss"), py::arg("preds"), py::arg("targets"),
        py::arg("pred_weights"), py::arg("xs"), py::arg("signs"), py::arg("l1_weights"), py::arg("gan_mode"),
        py::arg("dxs"), py::arg("dys"), py::call_guard<py::gil_scoped_release>());
  m.def("se_scale_fwd", &effgan::se_scale_fwd, py::arg("x"), py::arg("gate"), py::arg("y"),
        py::call_guard<py::gil_scoped_release>());
  m.def("se_scale_bwd", &effgan::se_scale_bwd, py::arg("dy"), py::arg("x"), py::arg("gate"), py::arg("dx"),
        py::arg("sum_dyx"), py::call_guard<py::gil_scoped_release>());
  m.def("dwconv_norm_act_fwd", &effgan::dwconv_norm_act_fwd, py::arg("x"), py::arg("weight"),
        py::arg("norm_weight"), py::arg("norm_bias"), py::arg("stride"), py::arg("pad"), py::arg("eps"),
        py::arg("act"), py::arg("slope"), py::arg("y"), py::arg("squeeze"), py::arg("stats"),
        py::call_guard<py::gil_scoped_release>());
  m.def("dwconv_norm_act_bwd", &effgan::dwconv_norm_act_bwd, py::arg("dy"), py::arg("dsqueeze"), py::arg("x"),
        py::arg("weight"), py::arg("norm_weight"), py::arg("norm_bias"), py::arg("stats"), py::arg("stride"),
        py::arg("pad"), py::arg("act"), py::arg("slope"), py::arg("dx"), py::arg("dweight"), py::arg("sum_g"),
        py::arg("sum_gz"), py::call_guard<py::gil_scoped_release>());
  m.def("diff_augment_fwd", &effgan::diff_augment_fwd, py::arg("x"), py::arg("brightness"), py::arg("saturation"),
        py::arg("contrast"), py::arg("shift"), py::arg("cut"), py::arg("cut_h"), py::arg("cut_w"), py::arg("color"),
        py::arg("translation"), py::arg("cutout"), py::arg("y"), py::call_guard<py::gil_scoped_release>());
  m.def("diff_augment_bwd", &effgan::diff_augment_bwd, py::arg("dy"), py::arg("saturation"), py::arg("contrast"),
        py::arg("shift"), py::arg("cut"), py::arg("cut_h"), py::arg("cut_w"), py::arg("color"), py::arg("translation"),
        py::arg("cutout"), py::arg("dx"), py::call_guard<py::gil_scoped_release>());
}
