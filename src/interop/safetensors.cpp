#include "interop/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstring>
#include <set>

#include "util/error.h"
#include "util/fs.h"

namespace codex::safetensors {
namespace {

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t size;
};

const std::vector<DtypeInfo>& dtypes() {
  static const std::vector<DtypeInfo> d = {
      {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
      {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
      {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
      {"BOOL", torch::kBool, 1},
  };
  return d;
}

const DtypeInfo* by_name(const std::string& n) {
  for (auto& d : dtypes())
    if (n == d.name) return &d;
  return nullptr;
}

const DtypeInfo* by_type(torch::ScalarType t) {
  for (auto& d : dtypes())
    if (t == d.type) return &d;
  return nullptr;
}

// Header sizes above this are refused before allocating (the reference reader uses 100 MB).
constexpr uint64_t kMaxHeader = 100ull << 20;

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

const torch::Tensor* File::find(const std::string& name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

File parse(const std::string& bytes, const std::string& what) {
  auto bad = [&](const std::string& msg) { return UsageError(what + ": not a valid safetensors file: " + msg); };
  if (bytes.size() < 8) throw bad("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  if (n > kMaxHeader) throw bad("header length " + std::to_string(n) + " is too large");
  if (n > bytes.size() - 8)
    throw bad("header length " + std::to_string(n) + " exceeds the file size " + std::to_string(bytes.size()));
  const uint64_t data_len = bytes.size() - 8 - n;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("header is not JSON (") + e.what() + ")");
  }
  if (!header.is_object()) throw bad("header is not a JSON object");

  File file;
  std::vector<Entry> entries;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) throw bad("__metadata__ is not an object");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) throw bad("__metadata__." + k + " is not a string");
        file.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    auto where = "tensor '" + name + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      throw bad(where + "expected an object with dtype, shape, data_offsets");
    if (!v["dtype"].is_string()) throw bad(where + "dtype is not a string");
    Entry e{name, by_name(v["dtype"].get<std::string>()), {}, 0, 0};
    if (!e.dtype) throw bad(where + "unsupported dtype " + v["dtype"].get<std::string>());
    if (!v["shape"].is_array()) throw bad(where + "shape is not an array");
    uint64_t numel = 1;
    for (auto& d : v["shape"]) {
      if (!d.is_number_unsigned()) throw bad(where + "shape holds a non-integer or negative size");
      uint64_t s = d.get<uint64_t>();
      if (s != 0 && numel > (uint64_t(1) << 62) / s) throw bad(where + "shape is too large");
      numel *= s;
      e.shape.push_back(static_cast<int64_t>(s));
    }
    auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw bad(where + "data_offsets must be [begin, end]");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_len)
      throw bad(where + "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                "] outside the " + std::to_string(data_len) + "-byte buffer");
    if (e.end - e.begin != numel * e.dtype->size)
      throw bad(where + "shape needs " + std::to_string(numel * e.dtype->size) + " bytes, data_offsets give " +
                std::to_string(e.end - e.begin));
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t pos = 0;
  for (auto& e : entries) {
    if (e.begin < pos) throw bad("tensor '" + e.name + "' overlaps the tensor before it");
    if (e.begin > pos) throw bad("unused bytes before tensor '" + e.name + "'");
    pos = e.end;
  }
  if (pos != data_len) throw bad("unused bytes after the last tensor");

  const char* base = bytes.data() + 8 + n;
  for (auto& e : entries) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), base + e.begin, e.end - e.begin);
    file.tensors.emplace_back(e.name, std::move(t));
  }
  return file;
}

File load(const std::string& path) { return parse(read_file(path), path); }

std::string serialize(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  std::set<std::string> seen;
  uint64_t pos = 0;
  for (auto& [name, t0] : tensors) {
    TORCH_CHECK(name != "__metadata__" && seen.insert(name).second, "safetensors: duplicate or reserved name ", name);
    auto* d = by_type(t0.scalar_type());
    TORCH_CHECK(d, "safetensors: unsupported dtype ", t0.scalar_type(), " for ", name);
    auto t = t0.detach().to(torch::kCPU).contiguous();
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * d->size;
    header[name] = {{"dtype", d->name}, {"shape", t.sizes().vec()}, {"data_offsets", {pos, pos + nbytes}}};
    pos += nbytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  h.append((8 - (8 + h.size()) % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  out += h;
  out.reserve(out.size() + pos);
  for (auto& t : data) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void save(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, serialize(tensors, metadata));
}

}  // namespace codex::safetensors
