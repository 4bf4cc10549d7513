// The fused CPU kernels (attention_kernel.h, logprob_kernel.h) compiled for one instruction set (generic).
// Built with its own -m flags (CMakeLists.txt); never includes torch headers.
#define CODEX_ATTN_ISA generic
#include "ops/cpu/attention_kernel_impl.h"
#include "ops/cpu/logprob_kernel_impl.h"
