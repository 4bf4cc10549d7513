#!/usr/bin/env bash
# The first run on a GPU machine (docs/gpu.md), about 8 minutes on one H100/H200 with a pip PyTorch
# 2.x (CUDA), nvcc, cmake and ninja, and no package registry (the other libraries come from
# .deps/, scripts/gpu_deps.sh). In order, each stage logged to its own files, a failing stage never
# stopping a later one that does not need it:
#   machine          nvidia-smi, nvcc, torch (version, CUDA, C++11 ABI flag, NCCL, bundled gloo/fmt
#                    headers), a bf16 8192^3 matmul's TFLOP/s measured with torch (the MFU ceiling)
#   deps, build      scripts/gpu_deps.sh unpack (when .deps/debs is there), scripts/build.sh --cuda
#                    into build-cuda/ (scripts/check_kernels.sh beside it: registers and spills)
#   attention_parity the CUDA attention kernel vs float64 LibTorch ops, forward + dq, dk, dv, on the
#                    shapes the benchmark never covers (T 1/63/65/1000, decoding Tq 1 / Tk 513, a
#                    prefill chunk, key masks with fully masked rows, non-causal; D 64/128; fp16/bf16)
#   bench_attention  kernel vs torch SDPA vs LibTorch ops: TFLOP/s and MFU, T 512..4096
#   train_*          20 steps of the gpt2-124m preset in bf16, model.attention = auto, fused and
#                    reference: tokens/s, MFU and the per-step losses side by side
#   logprob_bench_*  the log-prob kernel's GB/s and the fused op vs composed ops
#   then side by side in the time left (nothing timed):
#   logprob_parity   the log-prob kernel's values and gradients vs the float64 CPU path, V 50257/50304
#   memcheck_attention, racecheck_attention, memcheck_logprob
#                    compute-sanitizer on the smallest parity shapes
# Then ONE JSON line on stdout (also $DIR/result.json): "gpu_check" ok | incomplete (a stage was
# skipped: no compute-sanitizer, time budget spent, no binary) | failed, the "failed" and "skipped"
# stage lists, and the figures. Exit 0 only when every stage ran and passed.
# Logs: $GPU_CHECK_DIR, else $OUT/gpu_check when $OUT is set, else runs/gpu_check.
#   usage: scripts/gpu_check.sh
#   env: STEPS (timed training steps, 20), BATCH (16), BUDGET (seconds for the whole run, 480),
#        PEAK_TFLOPS (MFU ceiling; default: the matmul measured here, else 798), CODEX_BUILD_DIR
#        (build-cuda), SKIP_BUILD=1 (use the binary already there), SKIP_KERNELS=1 (no ptxas report)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
DIR=${GPU_CHECK_DIR:-${OUT:+$OUT/gpu_check}}
DIR=${DIR:-runs/gpu_check}
mkdir -p "$DIR"
STEPS=${STEPS:-20}
BATCH=${BATCH:-16}
BUDGET=${BUDGET:-480}
export CODEX_BUILD_DIR=${CODEX_BUILD_DIR:-build-cuda}
BIN=$CODEX_BUILD_DIR/codex-train
t0=$(date +%s)
STAGES=$DIR/stages.tsv
: >"$STAGES"
: >"$DIR/summary.log"
say() { echo "gpu_check: $*" | tee -a "$DIR/summary.log" >&2; }
elapsed() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( BUDGET - $(date +%s) + t0 )); }
# stage NAME LIMIT CMD...: stdout -> $DIR/NAME.out, stderr -> $DIR/NAME.log; records rc and seconds.
stage() {
  local name=$1 limit=$2; shift 2
  local s rc
  s=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$DIR/$name.out" 2>"$DIR/$name.log"
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - s ))" >>"$STAGES"
  say "$name: rc $rc, $(( $(date +%s) - s )) s$([ "$rc" = 124 ] || [ "$rc" = 137 ] && echo " (timed out after $limit s)")"
  return $rc
}
skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >>"$STAGES"; say "$1: skipped ($2)"; }

# 1. The machine, and the bf16 matmul ceiling measured with the machine's own PyTorch.
machine() {
  nvidia-smi -L
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv
  echo "cores $(nproc)"
  (/usr/local/cuda/bin/nvcc --version 2>/dev/null || nvcc --version) | tail -2
  python3 - <<'PY'
import json, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11abi", torch._C._GLIBCXX_USE_CXX11_ABI,
      "nccl", torch.distributed.is_nccl_available(), "prefix", torch.utils.cmake_prefix_path)
import os
inc = os.path.join(os.path.dirname(torch.__file__), "include")
print("torch/include:", " ".join(sorted(os.listdir(inc))))
n = 8192
a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
times = []
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); a @ b; e.record(); torch.cuda.synchronize()
    times.append(s.elapsed_time(e) / 1e3)
times.sort()
print(json.dumps({"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
                  "cxx11abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
                  "gloo_headers_in_wheel": os.path.isdir(os.path.join(inc, "gloo")),
                  "fmt_headers_in_wheel": os.path.isdir(os.path.join(inc, "fmt")),
                  "matmul_bf16_tflops": 2 * n ** 3 / times[len(times) // 2] / 1e12}))
PY
}
stage machine 120 machine
PEAK=${PEAK_TFLOPS:-$(python3 -c 'import json,sys; print(round(json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])["matmul_bf16_tflops"], 1))' "$DIR/machine.out" 2>/dev/null || echo 798)}
say "$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1); $(grep '^torch ' "$DIR/machine.out" | cut -d' ' -f1-8); MFU ceiling $PEAK TFLOP/s"

# 2. Libraries from .deps (scripts/gpu_deps.sh), then the CUDA build; the kernels' ptxas figures
# compile beside it (one nvcc process; the build has the other cores).
if [ -d .deps/debs ] && [ ! -d .deps/root ]; then
  stage deps 60 scripts/gpu_deps.sh unpack
elif [ -d .deps/root ]; then
  say "deps: .deps/root already unpacked"
else
  say "deps: no .deps/debs, the machine's own libraries must do (scripts/gpu_deps.sh download, docs/gpu.md)"
fi
# The binary finds the carried libraries by its RPATH; the library path is a fallback for the binary
# only (never for python3, nvcc or cmake: the carried zlib must not replace the machine's).
DEPS_LIB=$PWD/.deps/root/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
kern_pid=""
if [ "${SKIP_KERNELS:-0}" = 1 ]; then say "check_kernels: not run (SKIP_KERNELS=1)"
else (stage check_kernels 400 scripts/check_kernels.sh) & kern_pid=$!
fi
if [ "${SKIP_BUILD:-0}" = 1 ]; then
  say "build: not run (SKIP_BUILD=1)"
  built=0
else
  stage build 420 scripts/build.sh --cuda --no-tests
  built=$?
  [ "$built" -eq 0 ] || tail -30 "$DIR/build.log" >&2
fi
[ -x "$BIN" ] || built=1
say "build: $BIN $([ $built -eq 0 ] && echo ready || echo MISSING) at $(elapsed) s"

# 3. Everything that needs the binary. run NAME LIMIT ARGS...: the binary's stage, or skipped.
run() {
  local name=$1 limit=$2; shift 2
  if [ "$built" -ne 0 ]; then skip "$name" "no binary (build failed)"; return; fi
  local l; l=$(left)
  if [ "$l" -lt 20 ]; then skip "$name" "time budget spent"; return; fi
  [ "$limit" -gt "$l" ] && limit=$l
  stage "$name" "$limit" env LD_LIBRARY_PATH="$DEPS_LIB" "$@"
}
# Correctness first, then the timings on an otherwise idle GPU.
run attention_parity 180 "$BIN" bench attention --device cuda --parity-only --shapes all
run bench_attention 240 "$BIN" bench attention --device cuda --reps 10 --peak-tflops "$PEAK"
for attn in auto fused reference; do
  run "train_$attn" 180 "$BIN" bench train --config configs/pretrain/gpt2-124m.yaml run.device=cuda train.dtype=bf16 \
    train.batch_size="$BATCH" train.grad_accum=1 model.vocab_size=50304 model.attention=$attn --steps "$STEPS" --warmup 3
done
run logprob_bench_fused 90 "$BIN" bench logprob --device cuda --variant fused --vocab 50257 --rows 4096 --embd 768 --reps 5
run logprob_bench_composed 90 "$BIN" bench logprob --device cuda --variant composed --vocab 50257 --rows 4096 --embd 768 --reps 5

# 4. Checks that time nothing, side by side in the time left: the log-prob parity, and
# compute-sanitizer on the smallest shapes, every allocation its own cudaMalloc (LibTorch's caching
# allocator would hide out-of-bounds accesses inside its blocks).
SAN=$(command -v compute-sanitizer 2>/dev/null || true)
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
         /usr/local/cuda-*/bin/compute-sanitizer /opt/nvidia/*/compute-sanitizer/compute-sanitizer; do
  [ -z "$SAN" ] && [ -x "$c" ] && SAN=$c
done
sanitize() {
  local name=$1 tool=$2; shift 2
  if [ -z "$SAN" ]; then skip "$name" "no compute-sanitizer on this machine"; return; fi
  run "$name" 150 env PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$SAN" --tool "$tool" --error-exitcode 86 \
    --log-file "$DIR/$name.sanitizer.log" "$BIN" "$@"
}
pids=()
run logprob_parity 150 "$BIN" bench logprob --parity --device cuda & pids+=($!)
sanitize memcheck_attention memcheck bench attention --device cuda --parity-only --shapes small --no-baseline & pids+=($!)
sanitize racecheck_attention racecheck bench attention --device cuda --parity-only --shapes small --no-baseline & pids+=($!)
sanitize memcheck_logprob memcheck bench logprob --parity --device cuda --rows 33 --embd 64 & pids+=($!)
wait "${pids[@]}"

[ -n "$kern_pid" ] && wait "$kern_pid" 2>/dev/null

# 5. ONE JSON line. MFU of training: (6 N + 6 L T C) flops per token (forward + backward; the
# attention term halved by the causal mask) over the ceiling above.
python3 - "$DIR" "$(elapsed)" "$PEAK" "$(git describe --always --dirty 2>/dev/null || echo unknown)" <<'PY' || {
import json, os, re, sys
d, secs, peak, commit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def last_json(name):
    try:
        lines = [l for l in open(f"{d}/{name}.out") if l.startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None

stages, failed, skipped = {}, [], []
for line in open(f"{d}/stages.tsv"):
    f = line.rstrip("\n").split("\t")
    if f[1] == "skipped":
        stages[f[0]] = "skipped: " + f[3]
        skipped.append(f[0])
    else:
        rc = int(f[1])
        stages[f[0]] = {"rc": rc, "seconds": int(f[2])}
        if rc in (124, 137):
            stages[f[0]]["timed_out"] = True
        if rc != 0:
            failed.append(f[0])
out = {"gpu_check": "failed" if failed else "incomplete" if skipped else "ok", "failed": failed, "skipped": skipped,
       "commit": commit, "seconds": secs, "mfu_ceiling_tflops": peak}
m = last_json("machine")
if m:
    out.update({k: m[k] for k in ("gpu", "torch", "torch_cuda", "cxx11abi", "gloo_headers_in_wheel",
                                  "fmt_headers_in_wheel", "matmul_bf16_tflops")})
out["stages"] = stages

def parity(name):
    p = last_json(name)
    if not p:
        return None
    bad = [r for r in p["results"] if not r.get("ok")]
    r = {"cases": p["cases"], "failures": p["failures"],
         "failed_cases": [{k: b.get(k) for k in ("case", "dtype", "D", "vocab", "temperature", "entropy", "chunk_rows",
                                                  "error") if k in b} for b in bad[:12]]}
    # the worst relative error of each checked tensor over all cases
    worst = {}
    for res in p["results"]:
        for k, v in res.items():
            if k.startswith("err_") and isinstance(v, (int, float)):
                t = k[4:]
                rel = v / max(res.get("scale_" + t, 1.0), 1.0)
                worst[t] = max(worst.get(t, 0.0), rel)
    r["worst_err_over_max1_scale"] = worst
    return r

out["attention_parity"] = parity("attention_parity")
out["logprob_parity"] = parity("logprob_parity")
for name in ("memcheck_attention", "racecheck_attention", "memcheck_logprob"):
    try:
        log = open(f"{d}/{name}.sanitizer.log").read()
        summ = re.findall(r"(ERROR SUMMARY: .*|RACECHECK SUMMARY: .*)", log)
        out[name] = summ[-1].strip() if summ else "no summary line"
    except OSError:
        pass
b = last_json("bench_attention")
if b:
    keys = ("dtype", "T", "D", "kernel_tflops", "torch_sdpa_tflops", "reference_tflops", "kernel_mfu",
            "torch_sdpa_mfu", "max_err_out", "max_err_dq", "max_err_vs_sdpa", "parity_ok", "error")
    out["bench_attention"] = {"auto_path": b.get("auto_path"), "parity_failures": b.get("parity_failures"),
                              "cases": [{k: c[k] for k in keys if k in c} for c in b["cases"]]}
lp, lpc = last_json("logprob_bench_fused"), last_json("logprob_bench_composed")
if lp:
    out["logprob_bench"] = {"fwd_gbps": lp.get("kernel_forward_gbps"), "bwd_gbps": lp.get("kernel_backward_gbps"),
                            "fused_ms": lp.get("ms"), "composed_ms": lpc.get("ms") if lpc else None,
                            "bandwidth_ceiling_gbps": 3000}
train, losses = {}, {}
for attn in ("auto", "fused", "reference"):
    t = last_json(f"train_{attn}")
    if not t:
        continue
    L, C, T = t["n_layer"], t["n_embd"], t["block_size"]
    fpt = 6 * t["params"] + 6 * L * T * C
    train[attn] = {"path": t.get("attention_path"), "tokens_per_s": round(t["tokens_per_s"]),
                   "ms_per_step": round(t["ms_per_step"], 2), "mfu": round(t["tokens_per_s"] * fpt / (peak * 1e12), 4),
                   "batch": t["batch_size"], "block": T, "final_loss": t["losses"][-1] if t.get("losses") else None}
    losses[attn] = [round(x, 4) for x in t.get("losses", [])]
if train:
    out["train"] = train
    out["losses"] = losses
    ref = losses.get("reference")
    if ref:
        out["loss_max_abs_diff_vs_reference"] = {
            a: max(abs(x - y) for x, y in zip(l, ref)) for a, l in losses.items() if a != "reference" and l}
line = json.dumps(out, separators=(",", ":"))
open(f"{d}/result.json", "w").write(line + "\n")
print(line)
PY
  echo '{"gpu_check":"failed","failed":["summary"],"note":"the summary script failed; see the logs"}'
  exit 1
}
grep -q '"gpu_check":"ok"' "$DIR/result.json"
