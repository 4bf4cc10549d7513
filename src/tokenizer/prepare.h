#pragma once
// `data prepare`: corpus -> Codex filters -> exact dedup -> train/val split by content hash ->
// tokens (documents separated by end-of-text) -> shards in <run.dir>/data (see dataset.h).
#include <nlohmann/json.hpp>

#include "config/config.h"

namespace codex {

// Writes <run.dir>/data/{train,val}_NNNNN.bin, tokenizer.model and stats.json; returns the
// stats. Bad input (no documents, everything filtered, missing tokenizer) is a UsageError,
// thrown after stats.json is written when there were documents.
nlohmann::json prepare_data(const Config& cfg);

// The split a kept document goes to: "val" when its content hash falls below val_fraction.
bool is_val_document(const std::string& text, double val_fraction);

}  // namespace codex
