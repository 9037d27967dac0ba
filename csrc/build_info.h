// What this build of rsinfer._C contains, for `rsinfer env` (filled in ops.cpp, exposed by module.cpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace rsinfer {

// Ordered (key, value) pairs: compiler, OpenMP, threads, SIMD levels compiled and selected, CUDA objects.
std::vector<std::pair<std::string, std::string>> build_info();

}  // namespace rsinfer
