#pragma once
// safetensors, read and written directly (https://github.com/huggingface/safetensors format):
//   8 bytes: N, the header length (uint64 little-endian)
//   N bytes: JSON {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//                  "__metadata__": {"<str>": "<str>"}}   (offsets relative to the byte buffer)
//   the byte buffer: every tensor's raw little-endian bytes, row-major.
// Reading validates everything (header length vs file size, JSON shape, known dtype, shape
// product vs byte count, offsets in range, no overlaps and no holes, as the reference reader
// does); a bad file is a UsageError naming it.
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace codex::safetensors {

struct File {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in byte-buffer order
  std::map<std::string, std::string> metadata;
  const torch::Tensor* find(const std::string& name) const;
};

// Reads F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL tensors (kept in their stored dtype, on CPU).
File load(const std::string& path);
// Parses bytes already in memory; `what` names them in errors.
File parse(const std::string& bytes, const std::string& what);
// Writes the tensors in the given order (any of the dtypes above; names must be unique),
// atomically. The header is space-padded so the byte buffer starts 8-byte aligned.
void save(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata = {});
std::string serialize(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace codex::safetensors
