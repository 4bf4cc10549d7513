#pragma once
// Tokenizer files for a Hugging Face folder (`export hf`).
//   byte-level BPE:  tokenizer.json (+ GPT-2's vocab.json and merges.txt), tokenizer_config.json
//   SentencePiece:   tokenizer.model (ours; HF cannot load it) and tokenizer_config.json
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace codex {
class Tokenizer;
}

namespace codex::interop {

// (file name, bytes) for every tokenizer file; model_max_length is the model's context size.
std::vector<std::pair<std::string, std::string>> hf_tokenizer_files(const Tokenizer& tok, int64_t model_max_length);

}  // namespace codex::interop
