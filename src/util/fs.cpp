#include "util/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/error.h"

namespace codex {

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UsageError("'" + path.string() + "' is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError("cannot read '" + path.string() + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw UsageError("error while reading '" + path.string() + "'");
  return ss.str();
}

std::string read_maybe_gz(const fs::path& path) {
  if (!ends_with(path.string(), ".gz")) return read_file(path);
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UsageError("'" + path.string() + "' is a folder, not a file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw UsageError("cannot read '" + path.string() + "'");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string emsg = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw UsageError("'" + path.string() + "': corrupt gzip data (" + emsg + ")");
  return out;
}

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void make_output_dir(const fs::path& dir, const std::string& what) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw UsageError(what + " '" + dir.string() + "': exists and is not a folder");
  fs::create_directories(dir, ec);
  if (ec) throw UsageError(what + " '" + dir.string() + "': cannot create it (" + ec.message() + ")");
}

DirLock::DirLock(const fs::path& dir) {
  const fs::path p = dir / ".lock";
  fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw UsageError("cannot open '" + p.string() + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd_);
    fd_ = -1;
    throw UsageError("'" + dir.string() + "' is in use by another run (pid " + pid +
                     "); wait for it to end or choose another run.dir");
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // the pid is only for the message above
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UsageError("cannot write '" + path.string() + "': a folder is in the way");
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write '" + tmp.string() + "'");
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0) {
      ::close(fd);
      throw std::runtime_error("write failed for '" + tmp.string() + "'");
    }
    off += static_cast<size_t>(w);
  }
  ::fsync(fd);
  ::close(fd);
  fs::rename(tmp, path);
  fsync_dir(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<fs::path> expand_inputs(const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& exts) {
  std::vector<fs::path> out;
  auto wanted = [&](const fs::path& p) {
    for (const auto& e : exts)
      if (ends_with(p.filename().string(), e)) return true;
    return false;
  };
  for (const auto& in : inputs) {
    fs::path p(in);
    std::error_code ec;
    if (!fs::exists(p, ec)) throw UsageError("input '" + in + "' does not exist");
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) break;
        if (it->is_regular_file(ec) && wanted(it->path())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(p);
    }
  }
  return out;
}

uint64_t fnv1a64(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace codex
