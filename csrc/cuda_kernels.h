// CUDA launchers of the rsinfer ops on the raw-pointer arguments of kernel_args.h (all pointers are device pointers).
// Built by nvcc as a compile check (sm_80, sm_90a) and not linked into rsinfer._C: the CPU torch wheel has no CUDA
// libraries to link against. `stream` is a cudaStream_t.
#pragma once

#include <cstddef>

#include "kernel_args.h"

namespace rsinfer::cuda {

void modulate(const ModulateArgs& args, void* stream);
void add_layernorm(const AddLayerNormArgs& args, void* stream);
// group_modulate needs a float32 workspace of group_modulate_workspace(args) elements for the per-chunk moments.
std::size_t group_modulate_workspace(const GroupModulateArgs& args);
void group_modulate(const GroupModulateArgs& args, float* workspace, void* stream);
void accumulate(const AccumulateArgs& args, void* stream);

}  // namespace rsinfer::cuda
