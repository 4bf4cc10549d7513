#include "train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace codex {
namespace {

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// Protobuf wire format: key = (field_number << 3) | wire_type;
// wire types used: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

template <typename T>
void put_le(std::string& out, T v) {  // fixed-width little-endian (x86/ARM hosts are LE)
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}

void put_bytes_field(std::string& out, int field, const std::string& bytes) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | 2);
  put_varint(out, bytes.size());
  out += bytes;
}

// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
std::string event_header(double wall_time, int64_t step) {
  std::string ev;
  put_varint(ev, (1 << 3) | 1);
  put_le<double>(ev, wall_time);
  if (step != 0) {  // proto3 omits default values, as TensorFlow's writer does
    put_varint(ev, (2 << 3) | 0);
    put_varint(ev, static_cast<uint64_t>(step));  // negative int64: 10-byte two's complement
  }
  return ev;
}

double now_s() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  const auto& t = crc_table();
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

std::string tfrecord(const std::string& data) {
  std::string rec;
  put_le<uint64_t>(rec, data.size());
  put_le<uint32_t>(rec, masked_crc32c(rec.data(), 8));
  rec += data;
  put_le<uint32_t>(rec, masked_crc32c(data.data(), data.size()));
  return rec;
}

std::string tb_event_file_version(double wall_time) {
  std::string ev = event_header(wall_time, 0);
  put_bytes_field(ev, 3, "brain.Event:2");
  return ev;
}

std::string tb_event_scalar(double wall_time, int64_t step, const std::string& tag, float value) {
  // Summary.Value { string tag = 1; float simple_value = 2; }
  std::string val;
  put_bytes_field(val, 1, tag);
  put_varint(val, (2 << 3) | 5);
  put_le<float>(val, value);
  // Summary { repeated Value value = 1; }
  std::string summary;
  put_bytes_field(summary, 1, val);
  std::string ev = event_header(wall_time, step);
  put_bytes_field(ev, 5, summary);
  return ev;
}

TensorBoardWriter::TensorBoardWriter(const std::string& run_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw UsageError(run_dir + ": cannot create the TensorBoard log folder: " + ec.message());
  char host[256] = "localhost";
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof(host) - 1] = 0;
  std::string base = (fs::path(run_dir) / ("events.out.tfevents." +
                                           std::to_string(static_cast<int64_t>(now_s())) + "." + host))
                         .string();
  path_ = base;
  for (int i = 1; fs::exists(path_); ++i) path_ = base + "." + std::to_string(i);
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) throw UsageError(path_ + ": cannot open for writing: " + std::strerror(errno));
  write_record(tb_event_file_version(now_s()));
  flush();
}

TensorBoardWriter::~TensorBoardWriter() {
  if (f_) std::fclose(f_);
}

void TensorBoardWriter::add_scalar(const std::string& tag, int64_t step, double value) {
  write_record(tb_event_scalar(now_s(), step, tag, static_cast<float>(value)));
}

void TensorBoardWriter::flush() {
  if (f_) std::fflush(f_);
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string rec = tfrecord(data);
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size())
    throw RunError(path_ + ": write failed: " + std::strerror(errno));
}

}  // namespace codex
