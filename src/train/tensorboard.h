#pragma once
// A TensorBoard event-file writer with no protobuf or TensorFlow dependency.
//
// File format (what TensorBoard's EventFileLoader reads):
//   a sequence of TFRecords: uint64 length (LE), uint32 masked_crc32c(length bytes),
//   `length` bytes of data, uint32 masked_crc32c(data);
//   each record's data is a serialized `tensorflow.Event` protobuf; the first one carries
//   file_version "brain.Event:2", the rest summary { value { tag, simple_value } }.
// The few protobuf fields used are encoded by hand (see tensorboard.cpp for the field numbers).
#include <cstdint>
#include <cstdio>
#include <string>

namespace codex {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by TFRecord.
uint32_t crc32c(const void* data, size_t n);
// TFRecord's masked form: rotate right by 15, add 0xa282ead8 (CRCs of CRCs stay distinct).
uint32_t masked_crc32c(const void* data, size_t n);
// One TFRecord: framing around `data`.
std::string tfrecord(const std::string& data);
// Serialized Event protobufs (exposed for tests).
std::string tb_event_file_version(double wall_time);
std::string tb_event_scalar(double wall_time, int64_t step, const std::string& tag, float value);

class TensorBoardWriter {
 public:
  // Creates run_dir if needed and opens events.out.tfevents.<unix time>.<host> in it (a numeric
  // suffix is added when that name is taken, e.g. by a resumed run in the same second).
  explicit TensorBoardWriter(const std::string& run_dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // TensorBoard stores scalars as float32; `value` is rounded to it.
  void add_scalar(const std::string& tag, int64_t step, double value);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace codex
