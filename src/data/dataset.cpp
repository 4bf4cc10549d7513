#include "data/dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "util/error.h"
#include "util/fs.h"

namespace codex {
namespace {

constexpr char kMagic[8] = {'C', 'D', 'X', 'T', 'O', 'K', 'S', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kDtypeU16 = 1, kDtypeI32 = 2;
constexpr size_t kHeaderBytes = 64;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t dtype;
  int64_t count;
  int64_t vocab_size;
  uint64_t checksum;
  char pad[24];
};
static_assert(sizeof(Header) == kHeaderBytes, "shard header must be 64 bytes");

size_t elem_bytes(uint32_t dtype) { return dtype == kDtypeU16 ? 2 : 4; }

// One mmapped shard; the mapping lives as long as the dataset.
struct Shard {
  std::string path;
  void* map = nullptr;
  size_t map_bytes = 0;
  const unsigned char* payload = nullptr;
  uint32_t dtype = 0;
  int64_t count = 0;
  int64_t vocab_size = 0;
  uint64_t checksum = 0;
};

Shard open_shard(const std::string& path) {
  auto bad = [&](const std::string& why) { return UsageError("token shard '" + path + "': " + why); };
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw bad("cannot open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw bad("cannot stat");
  }
  size_t bytes = static_cast<size_t>(st.st_size);
  if (bytes < kHeaderBytes) {
    ::close(fd);
    throw bad("truncated (" + std::to_string(bytes) + " bytes, shorter than the 64-byte header)");
  }
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) throw bad("mmap failed");
  Shard s;
  s.path = path;
  s.map = map;
  s.map_bytes = bytes;
  try {
    Header h;
    std::memcpy(&h, map, sizeof h);
    if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) throw bad("not a token shard (bad magic)");
    if (h.version != kVersion)
      throw bad("format version " + std::to_string(h.version) + ", expected " + std::to_string(kVersion));
    if (h.dtype != kDtypeU16 && h.dtype != kDtypeI32) throw bad("unknown dtype code " + std::to_string(h.dtype));
    if (h.count < 0 || h.vocab_size <= 0) throw bad("corrupt header (negative count or vocab size)");
    size_t want = kHeaderBytes + static_cast<size_t>(h.count) * elem_bytes(h.dtype);
    if (bytes < want)
      throw bad("truncated (" + std::to_string(bytes) + " bytes, header promises " + std::to_string(want) + ")");
    if (bytes > want)
      throw bad("corrupt (" + std::to_string(bytes) + " bytes, header promises " + std::to_string(want) + ")");
    s.payload = static_cast<const unsigned char*>(map) + kHeaderBytes;
    // A checksum over the payload catches flipped bytes that a size check cannot.
    if (fnv1a64(s.payload, want - kHeaderBytes) != h.checksum) throw bad("checksum mismatch (corrupt payload)");
    s.dtype = h.dtype;
    s.count = h.count;
    s.vocab_size = h.vocab_size;
    s.checksum = h.checksum;
  } catch (...) {
    ::munmap(map, bytes);
    throw;
  }
  return s;
}

}  // namespace

void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size) {
  if (vocab_size <= 0) throw std::invalid_argument("write_token_shard: vocab_size must be positive");
  uint32_t dtype = vocab_size <= 65536 ? kDtypeU16 : kDtypeI32;
  size_t eb = elem_bytes(dtype);
  std::string buf(kHeaderBytes + tokens.size() * eb, '\0');
  auto* payload = reinterpret_cast<unsigned char*>(&buf[kHeaderBytes]);
  for (size_t i = 0; i < tokens.size(); ++i) {
    int32_t t = tokens[i];
    if (t < 0 || t >= vocab_size)
      throw std::invalid_argument("write_token_shard: token " + std::to_string(t) + " outside [0, " +
                                  std::to_string(vocab_size) + ")");
    if (dtype == kDtypeU16) {
      uint16_t v = static_cast<uint16_t>(t);
      std::memcpy(payload + i * 2, &v, 2);
    } else {
      std::memcpy(payload + i * 4, &t, 4);
    }
  }
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.dtype = dtype;
  h.count = static_cast<int64_t>(tokens.size());
  h.vocab_size = vocab_size;
  h.checksum = fnv1a64(payload, tokens.size() * eb);
  std::memcpy(&buf[0], &h, sizeof h);
  write_file_atomic(path, buf);
}

struct TokenDataset::Impl {
  std::vector<Shard> shards;
  std::vector<int64_t> starts;  // (num_shards + 1) cumulative token offsets
  int64_t vocab_size = 0;
  ~Impl() {
    for (auto& s : shards)
      if (s.map) ::munmap(s.map, s.map_bytes);
  }
};

TokenDataset::TokenDataset(const std::string& dir, const std::string& split) : impl_(std::make_unique<Impl>()) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError("data folder '" + dir + "' does not exist (run `data prepare`)");
  std::vector<std::string> paths;
  std::string prefix = split + "_";
  for (auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && ends_with(name, ".bin")) paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  if (paths.empty()) throw UsageError("data folder '" + dir + "' has no " + split + "_*.bin shards");
  impl_->starts.push_back(0);
  for (auto& p : paths) {
    impl_->shards.push_back(open_shard(p));
    const Shard& s = impl_->shards.back();
    if (impl_->vocab_size == 0) impl_->vocab_size = s.vocab_size;
    if (s.vocab_size != impl_->vocab_size)
      throw UsageError("token shard '" + p + "': vocab size " + std::to_string(s.vocab_size) + " differs from " +
                       std::to_string(impl_->vocab_size) + " in the other shards");
    impl_->starts.push_back(impl_->starts.back() + s.count);
  }
}

TokenDataset::~TokenDataset() = default;

int64_t TokenDataset::size() const { return impl_->starts.back(); }
int64_t TokenDataset::vocab_size() const { return impl_->vocab_size; }
int TokenDataset::num_shards() const { return static_cast<int>(impl_->shards.size()); }

std::string TokenDataset::checksum() const {
  uint64_t h = fnv1a64("", 0);
  for (auto& s : impl_->shards) h = fnv1a64(&s.checksum, sizeof s.checksum, h);
  return hex64(h);
}

void TokenDataset::read(int64_t start, int64_t n, int64_t* out) const {
  if (start < 0 || n < 0 || start + n > size())
    throw std::out_of_range("TokenDataset::read [" + std::to_string(start) + ", " + std::to_string(start + n) +
                            ") outside [0, " + std::to_string(size()) + ")");
  const auto& st = impl_->starts;
  // The shard holding `start`: last i with starts[i] <= start.
  size_t i = static_cast<size_t>(std::upper_bound(st.begin(), st.end(), start) - st.begin()) - 1;
  while (n > 0) {
    const Shard& s = impl_->shards[i];
    int64_t off = start - st[i];
    int64_t k = std::min(n, s.count - off);
    if (s.dtype == kDtypeU16) {
      for (int64_t j = 0; j < k; ++j) {
        uint16_t v;
        std::memcpy(&v, s.payload + (off + j) * 2, 2);
        out[j] = v;
      }
    } else {
      for (int64_t j = 0; j < k; ++j) {
        int32_t v;
        std::memcpy(&v, s.payload + (off + j) * 4, 4);
        out[j] = v;
      }
    }
    out += k;
    start += k;
    n -= k;
    ++i;
  }
}

}  // namespace codex
