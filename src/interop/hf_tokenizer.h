#pragma once
// Tokenizer files for a Hugging Face folder (`export hf`).
//   byte-level BPE:  tokenizer.json (+ GPT-2's vocab.json and merges.txt), tokenizer_config.json
//   SentencePiece:   tokenizer.model (ours), tokenizer.json (a Hugging Face BPE with byte
//                    fallback: the same ids on text free of the bytes our encoder escapes, i.e.
//                    invalid UTF-8, U+2581, U+E000, NUL), tokenizer_config.json
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

// A SentencePiece BPE model of ours (either variant) as Hugging Face's tokenizer.json.
std::string spm_tokenizer_json(const std::string& model_path);

}  // namespace codex::interop
