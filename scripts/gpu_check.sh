#!/usr/bin/env bash
# One run on a GPU machine with a pip PyTorch (../shared/docs/gpu.md), ~8 minutes: builds with
# CUDA, compiles every kernel with ptxas statistics, runs the CUDA kernels' parity checks against
# float32 LibTorch ops, the CPU kernel and torch's scaled_dot_product_attention, benchmarks
# attention forward + backward TFLOP/s beside torch's SDPA (flash backend) and the log-prob kernel's
# GB/s, trains the gpt2-124m preset for a few steps (tokens/s, MFU), and prints ONE JSON line last.
# Full logs go to $GPU_CHECK_DIR (default runs/gpu_check; $OUT/gpu_check when $OUT is set).
#   usage: scripts/gpu_check.sh          env: STEPS (training steps, default 10), BATCH (default 16)
set -uo pipefail
cd "$(dirname "$0")/.."
DIR=${GPU_CHECK_DIR:-${OUT:+$OUT/gpu_check}}
DIR=${DIR:-runs/gpu_check}
mkdir -p "$DIR"
STEPS=${STEPS:-10}
BATCH=${BATCH:-16}
export CODEX_BUILD_DIR=${CODEX_BUILD_DIR:-build-cuda}
BIN=$CODEX_BUILD_DIR/codex-train
t0=$(date +%s)
say() { echo "gpu_check: $*" | tee -a "$DIR/summary.log" >&2; }
fail() { say "FAILED: $*"; /usr/bin/env python3 -c 'import json,sys; print(json.dumps({"gpu_check": "failed", "stage": sys.argv[1]}))' "$1"; exit 1; }

# 1. The machine.
{ nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv; nproc
  /usr/local/cuda/bin/nvcc --version | tail -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI, "nccl", torch.distributed.is_nccl_available(), "prefix", torch.utils.cmake_prefix_path)'
} >"$DIR/machine.log" 2>&1 || fail machine
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
say "$GPU; $(grep '^torch' "$DIR/machine.log")"

# 2. Libraries from .deps (scripts/gpu_deps.sh), then the CUDA build.
if [ -d .deps/debs ] && [ ! -d .deps/root ]; then scripts/gpu_deps.sh unpack >>"$DIR/build.log" 2>&1 || fail deps; fi
export LD_LIBRARY_PATH=$PWD/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
scripts/build.sh --cuda --no-tests >>"$DIR/build.log" 2>&1 || { tail -30 "$DIR/build.log" >&2; fail build; }
say "built $BIN in $(( $(date +%s) - t0 )) s"

# 3. Kernels: registers and spills per kernel.
scripts/check_kernels.sh >"$DIR/kernels.log" 2>&1 || fail check_kernels

# 4. Attention: parity (exit 1 on a failure) + TFLOP/s beside torch's SDPA.
"$BIN" bench attention --device cuda --reps 10 >"$DIR/attention.json" 2>"$DIR/attention.err"
att_rc=$?
[ -s "$DIR/attention.json" ] || { cat "$DIR/attention.err" >&2; fail attention; }
say "attention: rc $att_rc (1 = parity failure)"

# 5. Log-prob kernel bandwidth and the fused op end to end (fwd + bwd, with the GEMMs).
"$BIN" bench logprob --device cuda --variant fused --vocab 50257 --rows 4096 --embd 768 --reps 5 \
  >"$DIR/logprob.json" 2>"$DIR/logprob.err" || fail logprob
"$BIN" bench logprob --device cuda --variant composed --vocab 50257 --rows 4096 --embd 768 --reps 5 \
  >"$DIR/logprob_composed.json" 2>>"$DIR/logprob.err" || fail logprob_composed

# 6. gpt2-124m for a few steps, bf16, fused attention on (auto) and off (reference).
for attn in auto reference; do
  "$BIN" bench train --config configs/pretrain/gpt2-124m.yaml run.device=cuda train.dtype=bf16 \
    train.batch_size="$BATCH" train.grad_accum=1 model.vocab_size=50304 model.attention=$attn \
    --steps "$STEPS" --warmup 3 >"$DIR/train_$attn.json" 2>"$DIR/train_$attn.err" || fail "train_$attn"
done

# 7. One JSON line. MFU: 6 N tokens/s plus attention 6 L T C (fwd + bwd, causal), over 798 TFLOP/s
# (bf16 dense peak measured on this image, ../shared/docs/gpu.md).
python3 - "$DIR" "$GPU" "$(( $(date +%s) - t0 ))" <<'PY'
import json, sys
d, gpu, secs = sys.argv[1], sys.argv[2], int(sys.argv[3])
att = json.loads(open(f"{d}/attention.json").read().strip().splitlines()[-1])
lp = json.loads(open(f"{d}/logprob.json").read().strip().splitlines()[-1])
lpc = json.loads(open(f"{d}/logprob_composed.json").read().strip().splitlines()[-1])
out = {"gpu_check": "ok" if att.get("parity_failures", 1) == 0 else "parity_failures", "gpu": gpu, "seconds": secs}
out["attention"] = [{k: c.get(k) for k in ("dtype", "T", "D", "kernel_tflops", "torch_sdpa_tflops", "max_err_out",
                                            "max_err_dq", "max_err_vs_sdpa", "parity_ok")} for c in att["cases"]]
out["logprob"] = {"fwd_gbps": lp.get("kernel_forward_gbps"), "bwd_gbps": lp.get("kernel_backward_gbps"),
                  "fused_ms": lp["ms"], "composed_ms": lpc["ms"], "bandwidth_ceiling_gbps": 3000}
for attn in ("auto", "reference"):
    t = json.loads(open(f"{d}/train_{attn}.json").read().strip().splitlines()[-1])
    L, C, T = t["n_layer"], t["n_embd"], t["block_size"]
    flops_per_token = 6 * t["params"] + 6 * L * T * C
    out[f"train_{attn}"] = {"tokens_per_s": t["tokens_per_s"], "mfu": t["tokens_per_s"] * flops_per_token / 798e12,
                            "batch": t["batch_size"], "block": T}
print(json.dumps(out))
PY
