// CPU kernels of the rsinfer ops: the math of rsinfer/ops/reference.py with float32 accumulation.
//
// cpu_kernels.cpp is compiled once per SIMD level (DEFAULT: the baseline x86-64 ISA; AVX2: AVX2+FMA+F16C), each copy
// in its own namespace named by CPU_CAPABILITY, exactly as ATen builds its own kernels, so one binary runs on any
// x86-64 CPU and uses AVX2 where the CPU has it. ops.cpp validates tensors, then calls the table of the best level.
#pragma once

#include "kernel_args.h"

namespace rsinfer::cpu {

struct KernelTable {
  const char* simd;  // the CPU_CAPABILITY it was compiled for: "DEFAULT" or "AVX2"
  void (*modulate)(const ModulateArgs&);
  void (*add_layernorm)(const AddLayerNormArgs&);
  void (*group_modulate)(const GroupModulateArgs&);
  void (*accumulate)(const AccumulateArgs&);
};

namespace DEFAULT { const KernelTable& kernel_table(); }
#ifdef RSINFER_HAVE_AVX2
namespace AVX2 { const KernelTable& kernel_table(); }
#endif

}  // namespace rsinfer::cpu
