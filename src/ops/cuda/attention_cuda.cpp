// The binding: allocations, the stream, the autograd function. The kernels (and the params struct
// they share with this file) live in kernels/attention/.
#ifdef CODEX_WITH_CUDA_KERNELS
#include "ops/cuda/attention_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>

#include "attention/attention_params.h"

namespace codex {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

kernels::AttnParams params(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& mask, bool causal) {
  kernels::AttnParams p{};
  p.B = static_cast<int32_t>(q.size(0));
  p.H = static_cast<int32_t>(q.size(1));
  p.Tq = static_cast<int32_t>(q.size(2));
  p.Tk = static_cast<int32_t>(k.size(2));
  p.D = static_cast<int32_t>(q.size(3));
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.D)));
  p.causal = causal ? 1 : 0;
  p.dtype = q.scalar_type() == torch::kBFloat16 ? kernels::AttnDType::BF16 : kernels::AttnDType::F16;
  p.key_mask = mask.numel() > 0 ? mask.data_ptr<uint8_t>() : nullptr;
  return p;
}

void check(int err, const char* what) {
  TORCH_CHECK(err == 0, what, ": ", cudaGetErrorString(static_cast<cudaError_t>(err)));
}

struct FusedAttentionCuda : torch::autograd::Function<FusedAttentionCuda> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& mask, bool causal) {
    const c10::cuda::CUDAGuard device_guard(q.device());
    auto qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    auto p = params(qc, kc, mask, causal);
    auto out = torch::empty_like(qc, torch::MemoryFormat::Contiguous);
    auto lse = torch::empty({qc.size(0), qc.size(1), qc.size(2)}, qc.options().dtype(torch::kFloat));
    p.q = qc.data_ptr();
    p.k = kc.data_ptr();
    p.v = vc.data_ptr();
    p.out = out.data_ptr();
    p.lse = lse.data_ptr<float>();
    check(kernels::attention_forward_cuda(p, at::cuda::getCurrentCUDAStream().stream()), "attention forward kernel");
    ctx->save_for_backward({qc, kc, vc, out, lse, mask});
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto s = ctx->get_saved_variables();
    const c10::cuda::CUDAGuard device_guard(s[0].device());
    const auto &qc = s[0], &kc = s[1], &vc = s[2], &out = s[3], &lse = s[4], &mask = s[5];
    auto dout = grad_out[0].to(qc.scalar_type()).contiguous();
    auto p = params(qc, kc, mask, ctx->saved_data["causal"].toBool());
    auto f32 = qc.options().dtype(torch::kFloat);
    auto delta = torch::empty({qc.size(0), qc.size(1), qc.size(2)}, f32);
    auto pad = torch::empty({qc.size(0), qc.size(1), qc.size(3)}, f32);
    auto dq_accum = torch::empty(qc.sizes(), f32);
    auto dq = torch::empty_like(qc), dk = torch::empty_like(kc), dv = torch::empty_like(vc);
    p.q = qc.data_ptr();
    p.k = kc.data_ptr();
    p.v = vc.data_ptr();
    p.out = out.data_ptr();
    p.lse = lse.data_ptr<float>();
    p.dout = dout.data_ptr();
    p.delta = delta.data_ptr<float>();
    p.pad_dout = pad.data_ptr<float>();
    p.dq_accum = dq_accum.data_ptr<float>();
    p.dq = dq.data_ptr();
    p.dk = dk.data_ptr();
    p.dv = dv.data_ptr();
    check(kernels::attention_backward_cuda(p, at::cuda::getCurrentCUDAStream().stream()), "attention backward kernel");
    return {dq, dk, dv, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

CudaKernelFacts cuda_kernel_facts(const torch::Device& device, int64_t head_dim) {
  CudaKernelFacts f;
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(device.has_index() ? device.index() : at::cuda::current_device());
  f.cc_major = prop->major;
  f.smem_optin = static_cast<int64_t>(prop->sharedMemPerBlockOptin);
  if (head_dim == 64 || head_dim == 128) {
    f.smem_forward = kernels::attention_forward_smem(static_cast<int>(head_dim));
    f.smem_backward = kernels::attention_backward_smem(static_cast<int>(head_dim));
  }
  return f;
}

torch::Tensor attention_cuda_launch(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                    bool causal, const torch::Tensor& key_mask) {
  auto mask = key_mask.defined() ? key_mask.to(q.device(), torch::kUInt8).contiguous()
                                 : torch::empty({0}, q.options().dtype(torch::kUInt8));
  return FusedAttentionCuda::apply(q, k, v, mask, causal);
}

}  // namespace codex
#endif  // CODEX_WITH_CUDA_KERNELS
