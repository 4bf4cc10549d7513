#include "interop/hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <unordered_set>

#include "tokenizer/bpe.h"
#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"
#include "util/fs.h"

namespace codex::interop {

std::string spm_tokenizer_json(const std::string& model_path) {
  SpmModel m(model_path);
  const int32_t n = m.vocab_size();
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object(), added = nlohmann::ordered_json::array();
  std::unordered_set<std::string> normal;
  std::string unk;
  for (int32_t id = 0; id < n; ++id) {
    const int kind = m.kind(id);
    const std::string piece = m.piece(id);
    vocab[piece] = id;
    if (kind == SpmModel::kNormal) normal.insert(piece);
    if (kind == SpmModel::kUnknown) unk = piece;
    if (kind == SpmModel::kControl || kind == SpmModel::kUnknown)
      added.push_back({{"id", id}, {"content", piece}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", true}});
  }
  // SentencePiece's BPE merges the adjacent pair whose concatenation is the highest-scoring piece;
  // a BPE trainer's pieces stand in merge order (id order = score order). As ranked merges: every
  // split of each piece into two pieces, ranked by the piece's id. The plain variant splits words
  // at spaces before merging, but none of its pieces holds a space after its first character, so
  // merging without that split gives the same pieces.
  nlohmann::ordered_json merges = nlohmann::ordered_json::array();
  for (int32_t id = 0; id < n; ++id) {
    if (m.kind(id) != SpmModel::kNormal) continue;
    const std::string piece = m.piece(id);
    for (size_t k = 1; k < piece.size(); ++k) {
      if ((static_cast<unsigned char>(piece[k]) & 0xC0) == 0x80) continue;  // inside a UTF-8 character
      const std::string l = piece.substr(0, k), r = piece.substr(k);
      if (normal.count(l) && normal.count(r)) merges.push_back(l + " " + r);
    }
  }
  auto replace = [](const std::string& from, const std::string& to) {
    return nlohmann::ordered_json{{"type", "Replace"}, {"pattern", {{"String", from}}}, {"content", to}};
  };
  const std::string space = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  nlohmann::ordered_json j = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      // '\n' -> our placeholder (as the encoder does before SentencePiece), ' ' -> U+2581; no
      // dummy prefix, no pre-split.
      {"normalizer", {{"type", "Sequence"}, {"normalizers", {replace("\n", kNewlinePlaceholder), replace(" ", space)}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", {replace(space, " "), replace(kNewlinePlaceholder, "\n"), {{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", unk.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(unk)},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}}};
  return j.dump(-1, ' ', false) + "\n";
}

std::vector<std::pair<std::string, std::string>> hf_tokenizer_files(const Tokenizer& tok, int64_t model_max_length) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string eot = kEotPiece;
  nlohmann::ordered_json cfg = {{"model_max_length", model_max_length},
                                {"bos_token", eot},
                                {"eos_token", eot},
                                {"unk_token", eot},
                                {"clean_up_tokenization_spaces", false}};
  if (tok.pad_id() != tok.eot_id()) cfg["pad_token"] = kPadPiece;
  if (const BpeModel* bpe = tok.bpe()) {
    out.emplace_back("tokenizer.json", bpe->tokenizer_json());
    out.emplace_back("vocab.json", bpe->vocab_json());
    out.emplace_back("merges.txt", bpe->merges_txt());
    cfg["tokenizer_class"] = "GPT2Tokenizer";
    cfg["add_prefix_space"] = false;
    cfg["add_bos_token"] = false;
  } else {
    out.emplace_back(kSpmFileName, read_file(tok.path()));
    if (std::string j = spm_tokenizer_json(tok.path()); !j.empty()) out.emplace_back("tokenizer.json", j);
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
  }
  out.emplace_back("tokenizer_config.json", cfg.dump(2) + "\n");
  return out;
}

}  // namespace codex::interop
