#!/usr/bin/env bash
# scripts/gpu_check.sh without a GPU: a stand-in codex-train (canned JSON lines, one parity stage
# failing) and a stand-in compute-sanitizer run the script's whole flow (SKIP_BUILD=1,
# SKIP_KERNELS=1) in a few seconds. Checks: the last stdout line is the JSON summary; a failing
# stage is named and does not stop the later ones; the sanitizer stages get
# PYTORCH_NO_CUDA_MEMORY_CACHING=1 and their summary lines; the per-step losses of auto / fused /
# reference come side by side; the exit status is 1 on a failure. Needs bash and python3 only.
#   usage: tests/gpu/gpu_check_dryrun.sh      (exit 0 = pass)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/bin" "$T/build"
cat >"$T/build/codex-train" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  *parity-only*)
    echo '{"bench":"attention_parity","cases":2,"failures":1,"results":[{"case":"T1","dtype":"bf16","D":64,"err_out":0.001,"scale_out":3.0,"ok":true},{"case":"T65_mask","dtype":"fp16","D":128,"err_dq":0.5,"scale_dq":2.0,"ok":false}]}'
    exit 1 ;;
  *"logprob --parity"*)
    echo '{"bench":"logprob_parity","cases":1,"failures":0,"results":[{"vocab":50257,"err_logp":1e-6,"scale_logp":12.0,"ok":true}]}' ;;
  *"bench attention"*)
    echo '{"bench":"attention","auto_path":"sdpa","parity_failures":0,"cases":[{"dtype":"bf16","T":512,"D":64,"kernel_tflops":100.0,"torch_sdpa_tflops":300.0,"parity_ok":true}]}' ;;
  *"bench train"*)
    a=$(echo "$*" | sed -E 's/.*model.attention=([a-z]+).*/\1/')
    l='[10.9,10.1,9.2]'; [ "$a" = fused ] && l='[10.9,10.2,9.4]'
    echo "{\"bench\":\"train\",\"tokens_per_s\":400000,\"ms_per_step\":40.0,\"params\":124000000,\"n_layer\":12,\"n_embd\":768,\"block_size\":1024,\"batch_size\":16,\"attention_path\":\"$a\",\"losses\":$l}" ;;
  *"bench logprob"*) echo '{"bench":"logprob","ms":12.0,"kernel_forward_gbps":2000}' ;;
  *) exit 3 ;;
esac
EOF
cat >"$T/bin/compute-sanitizer" <<'EOF'
#!/usr/bin/env bash
log=/dev/null
while [ $# -gt 0 ]; do case "$1" in --tool|--error-exitcode) shift 2 ;; --log-file) log=$2; shift 2 ;; *) break ;; esac; done
echo "caching off: ${PYTORCH_NO_CUDA_MEMORY_CACHING:-unset}" >"$log"
"$@"; rc=$?
echo "========= ERROR SUMMARY: 0 errors" >>"$log"
exit $rc
EOF
chmod +x "$T/build/codex-train" "$T/bin/compute-sanitizer"
set +e
PATH="$T/bin:$PATH" SKIP_BUILD=1 SKIP_KERNELS=1 CODEX_BUILD_DIR="$T/build" GPU_CHECK_DIR="$T/logs" \
  "$ROOT/scripts/gpu_check.sh" >"$T/stdout" 2>"$T/stderr"
rc=$?
set -e
[ "$rc" = 1 ] || { echo "FAIL: exit status $rc, expected 1"; cat "$T/stderr"; exit 1; }
grep -q "caching off: 1" "$T/logs/memcheck_attention.sanitizer.log" || { echo "FAIL: sanitizer without PYTORCH_NO_CUDA_MEMORY_CACHING=1"; exit 1; }
tail -1 "$T/stdout" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
def need(cond, what):
    if not cond:
        print("FAIL:", what); print(json.dumps(d, indent=1)); sys.exit(1)
need(d["gpu_check"] == "failed", "status failed")
need("attention_parity" in d["failed"], "attention_parity named as failed")
need(d["attention_parity"]["failed_cases"] == [{"case": "T65_mask", "dtype": "fp16", "D": 128}], "the failed case named")
for s in ("bench_attention", "train_auto", "train_fused", "train_reference", "logprob_parity", "logprob_bench_fused"):
    need(d["stages"][s]["rc"] == 0, s + " ran after the failure and passed")
need(d["memcheck_logprob"] == "ERROR SUMMARY: 0 errors", "sanitizer summary line")
need("memcheck_attention" in d["failed"] and "racecheck_attention" in d["failed"], "sanitized failing parity is a failure")
need(d["losses"]["fused"] == [10.9, 10.2, 9.4] and d["losses"]["reference"] == [10.9, 10.1, 9.2], "loss curves")
need(abs(d["loss_max_abs_diff_vs_reference"]["fused"] - 0.2) < 1e-9, "loss difference vs reference")
need(d["train"]["auto"]["path"] == "auto" and d["train"]["auto"]["mfu"] > 0, "train figures")
need(d["bench_attention"]["auto_path"] == "sdpa", "benchmark figures")
print("gpu_check_dryrun: ok")
'
