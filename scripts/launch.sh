#!/usr/bin/env bash
# torchrun-style launcher: starts the local ranks of a (multi-node) job.
#
#   scripts/launch.sh --nproc-per-node N [--nnodes M --node-rank R --master-addr H --master-port P] \
#       [--grace S] -- build/codex-train pretrain --config ...
#
# Each rank gets RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE GROUP_RANK NODE_RANK MASTER_ADDR
# MASTER_PORT, as torchrun sets them. Output lines are prefixed "[rank R]". A first SIGINT/SIGTERM
# is forwarded (as SIGTERM) to every rank and the launcher waits for them: codex-train finishes
# its step and checkpoints it; a second signal SIGKILLs every rank. When a rank exits non-zero
# on its own, the others get SIGTERM (then SIGKILL after --grace seconds) and the launcher exits
# with that rank's status; no rank is left behind.
set -uo pipefail

usage() { echo "launch.sh: $1 (usage: launch.sh --nproc-per-node N [--nnodes M --node-rank R --master-addr H --master-port P] -- command...)" >&2; exit 2; }
int_arg() { [[ "$2" =~ ^[0-9]+$ ]] || usage "$1 expects a non-negative integer, got '$2'"; }

NPROC="" NNODES=1 NODE_RANK=0 ADDR=127.0.0.1 PORT=29500 GRACE=10
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc-per-node|--nproc_per_node) [ $# -ge 2 ] || usage "$1 needs a value"; int_arg "$1" "$2"; NPROC=$2; shift 2 ;;
    --nnodes) [ $# -ge 2 ] || usage "$1 needs a value"; int_arg "$1" "$2"; NNODES=$2; shift 2 ;;
    --node-rank|--node_rank) [ $# -ge 2 ] || usage "$1 needs a value"; int_arg "$1" "$2"; NODE_RANK=$2; shift 2 ;;
    --master-addr|--master_addr) [ $# -ge 2 ] || usage "$1 needs a value"; ADDR=$2; shift 2 ;;
    --master-port|--master_port) [ $# -ge 2 ] || usage "$1 needs a value"; int_arg "$1" "$2"; PORT=$2; shift 2 ;;
    --grace) [ $# -ge 2 ] || usage "$1 needs a value"; int_arg "$1" "$2"; GRACE=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage "unknown argument '$1'" ;;
  esac
done
[ -n "$NPROC" ] || usage "--nproc-per-node is required"
[ "$NPROC" -ge 1 ] || usage "--nproc-per-node must be at least 1"
[ "$NNODES" -ge 1 ] || usage "--nnodes must be at least 1"
[ "$NODE_RANK" -lt "$NNODES" ] || usage "--node-rank $NODE_RANK must be below --nnodes $NNODES"
[ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || usage "--master-port must be in 1..65535"
[ $# -gt 0 ] || usage "no command after --"

WORLD=$((NPROC * NNODES))
pids=()
stop_all() {  # $1: signal
  for p in "${pids[@]}"; do kill "-$1" -- "-$p" 2>/dev/null; done
}
reap() {  # TERM, wait up to GRACE seconds, then KILL whatever is left
  stop_all TERM
  for _ in $(seq $((GRACE * 10))); do
    alive=0
    for p in "${pids[@]}"; do kill -0 -- "-$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  stop_all KILL
  wait "${pids[@]}" 2>/dev/null
}
STOPPING=""  # set by a first signal: the exit status to end with (130 / 143)
on_signal() {
  if [ -n "$STOPPING" ]; then
    echo "launch.sh: got $1 again, killing all ranks" >&2
    stop_all KILL
    wait "${pids[@]}" 2>/dev/null
    exit "$2"
  fi
  STOPPING=$2
  echo "launch.sh: got $1, asking all ranks to stop (a second signal kills them)" >&2
  stop_all TERM
}
trap 'on_signal SIGINT 130' INT
trap 'on_signal SIGTERM 143' TERM

# Output prefixers read each rank's stdout/stderr through FIFOs; they are our own children, so we
# can wait for them to drain before exiting.
FIFOS=$(mktemp -d "${TMPDIR:-/tmp}/launch.XXXXXX")
trap 'rm -rf "$FIFOS"' EXIT
seds=()
for ((lr = 0; lr < NPROC; lr++)); do
  r=$((NODE_RANK * NPROC + lr))
  mkfifo "$FIFOS/out$r" "$FIFOS/err$r"
  sed -u "s/^/[rank $r] /" < "$FIFOS/out$r" & seds+=($!)
  sed -u "s/^/[rank $r] /" < "$FIFOS/err$r" >&2 & seds+=($!)
  # setsid: each rank leads its own process group, so stopping it also stops its children.
  RANK=$r WORLD_SIZE=$WORLD LOCAL_RANK=$lr LOCAL_WORLD_SIZE=$NPROC GROUP_RANK=$NODE_RANK \
  NODE_RANK=$NODE_RANK MASTER_ADDR=$ADDR MASTER_PORT=$PORT \
    setsid "$@" > "$FIFOS/out$r" 2> "$FIFOS/err$r" &
  pids+=($!)
done

status=0
live=("${pids[@]}")
while [ ${#live[@]} -gt 0 ]; do
  done_pid=""
  wait -n -p done_pid "${live[@]}"
  rc=$?
  [ -n "${done_pid:-}" ] || continue   # interrupted by a trapped signal
  next=(); for p in "${live[@]}"; do [ "$p" = "$done_pid" ] || next+=("$p"); done; live=("${next[@]}")
  if [ $rc -ne 0 ] && [ -z "$STOPPING" ]; then
    for ((i = 0; i < ${#pids[@]}; i++)); do [ "${pids[$i]}" = "$done_pid" ] && bad=$((NODE_RANK * NPROC + i)); done
    echo "launch.sh: rank ${bad:-?} exited with status $rc; stopping the other ranks" >&2
    status=$rc
    reap
    break
  fi
done
stop_all KILL  # whatever a finished rank left running in its process group
wait "${pids[@]}" 2>/dev/null
# Let the prefixers drain before we exit, so callers that read our output after we end see
# every line (bounded: 5 s, in case something outside the ranks' groups holds a FIFO open).
for _ in $(seq 50); do
  alive=0
  for p in "${seds[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.1
done
[ -n "$STOPPING" ] && exit "$STOPPING"
exit $status
