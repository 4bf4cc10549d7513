#include "interop/hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/fs.h"

namespace codex::interop {

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
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast";
  }
  out.emplace_back("tokenizer_config.json", cfg.dump(2) + "\n");
  return out;
}

}  // namespace codex::interop
