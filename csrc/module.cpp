// The Python module rsinfer._C. Loading it registers the torch custom ops torch.ops.rsinfer.* (ops.cpp, through
// TORCH_LIBRARY's static initialisers); the module itself only reports what was built.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "build_info.h"

PYBIND11_MODULE(_C, m) {
  m.doc() = "rsinfer's compiled CPU ops, registered as torch.ops.rsinfer.*; build_info() says how they were built";
  m.def(
      "build_info",
      [] {
        pybind11::dict info;
        for (const auto& [key, value] : rsinfer::build_info()) info[pybind11::str(key)] = value;
        return info;
      },
      "Compiler, OpenMP, threads, SIMD levels compiled and selected at run time, and the CUDA objects compiled.");
}
