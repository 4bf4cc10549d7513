// The fused CPU kernels (attention_kernel.h, logprob_kernel.h) compiled for one instruction set (avx512).
// Built with its own -m flags (CMakeLists.txt); never includes torch headers.
#if defined(__x86_64__) && defined(CODEX_ATTN_ISA_FLAGS)
#define CODEX_ATTN_ISA avx512
#include "ops/cpu/attention_kernel_impl.h"
#include "ops/cpu/logprob_kernel_impl.h"
#endif
