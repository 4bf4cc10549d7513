#include "util/fs.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/file.h>
#include <sys/statvfs.h>
#include <csignal>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
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

DirLock::DirLock(const fs::path& dir, const std::string& what) {
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
                     "); wait for it to end or choose another " + what);
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // the pid is only for the message above
  }
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

std::runtime_error io_error(const std::string& what, const fs::path& path, int err) {
  return std::runtime_error(what + " '" + path.string() + "': " + std::strerror(err));
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UsageError("cannot write '" + path.string() + "': a folder is in the way");
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw io_error("cannot write", tmp, errno);
  // A failure (a full disk, a quota) removes the partial file: it would hold the space.
  auto fail = [&](int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return io_error("cannot write", path, err);
  };
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw fail(errno);
    }
    off += static_cast<size_t>(w);
  }
  // Some filesystems (NFS, quotas) report a full disk only at fsync or close.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) throw fail(errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw io_error("cannot write", path, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw io_error("cannot write", path, err);
  }
  fsync_dir(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

namespace {

// Output folders and files a command would replace: a file, or a folder with anything in it.
bool holds_output(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(p, ec))) return false;
  if (fs::is_directory(p, ec)) return !fs::is_empty(p, ec);
  return true;
}

bool pid_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

}  // namespace

void check_overwrite(const fs::path& path, const std::string& what, bool force) {
  if (force || !holds_output(path)) return;
  throw UsageError(what + " '" + path.string() + "' already exists; pass --force (or overwrite=true) to replace it");
}

StagedOutput::StagedOutput(fs::path final_path, Kind kind) : final_(std::move(final_path)), kind_(kind) {
  if (final_.filename().empty()) final_ = final_.parent_path();  // "out/" names the folder "out"
  const fs::path parent = final_.has_parent_path() ? final_.parent_path() : fs::path(".");
  const std::string stem = "." + final_.filename().string() + ".tmp-";
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw UsageError("cannot create '" + parent.string() + "': " + ec.message());
  if (fs::is_directory(final_, ec) != (kind == Kind::kDir) && fs::exists(final_, ec))
    throw UsageError("'" + final_.string() + "' exists and is " +
                     (kind == Kind::kDir ? "not a folder" : "a folder, not a file"));
  // Leftovers of a killed run for the same output (a pid that no longer runs).
  for (auto it = fs::directory_iterator(parent, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind(stem, 0) != 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(n.c_str() + stem.size(), &end, 10);
    if (end && *end == '\0' && !pid_alive(pid)) {
      std::error_code ec2;
      fs::remove_all(it->path(), ec2);
    }
  }
  tmp_ = parent / (stem + std::to_string(::getpid()));
  fs::remove_all(tmp_, ec);
  if (kind == Kind::kDir) {
    fs::create_directory(tmp_, ec);
    if (ec) throw io_error("cannot create", tmp_, ec.value());
  }
}

StagedOutput::~StagedOutput() {
  if (done_) return;
  std::error_code ec;
  fs::remove_all(tmp_, ec);
}

void StagedOutput::commit() {
  const fs::path parent = final_.has_parent_path() ? final_.parent_path() : fs::path(".");
  if (kind_ == Kind::kDir) fsync_dir(tmp_);
  std::error_code ec;
  const bool replacing = fs::exists(fs::symlink_status(final_, ec));
  if (kind_ == Kind::kFile || !replacing) {
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) throw io_error("cannot rename into place", final_, errno);
  } else {
    // A folder cannot be renamed over a non-empty one: swap the two in one step (Linux 3.15+),
    // else move the old one aside first; either way readers never see a half-written folder.
    if (::renameat2(AT_FDCWD, tmp_.c_str(), AT_FDCWD, final_.c_str(), RENAME_EXCHANGE) != 0) {
      const fs::path old = parent / ("." + final_.filename().string() + ".old-" + std::to_string(::getpid()));
      fs::remove_all(old, ec);
      if (::rename(final_.c_str(), old.c_str()) != 0) throw io_error("cannot move aside", final_, errno);
      if (::rename(tmp_.c_str(), final_.c_str()) != 0) {
        const int err = errno;
        if (::rename(old.c_str(), final_.c_str()) != 0) { /* the old output stays at `old` */ }
        throw io_error("cannot rename into place", final_, err);
      }
      fs::remove_all(old, ec);
    } else {
      fs::remove_all(tmp_, ec);  // now the old output
    }
  }
  done_ = true;
  fsync_dir(parent);
}

void check_can_write(const fs::path& file, const std::string& what) {
  std::error_code ec;
  if (fs::is_directory(file, ec)) throw UsageError(what + " '" + file.string() + "': is a folder, not a file");
  const fs::path parent = file.has_parent_path() ? file.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  if (ec) throw UsageError(what + " '" + file.string() + "': cannot create its folder (" + ec.message() + ")");
  const fs::path probe = parent / ("." + file.filename().string() + ".probe-" + std::to_string(::getpid()));
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw UsageError(what + " '" + file.string() + "': cannot write there (" + std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

int64_t free_bytes(const fs::path& path) {
  fs::path p = fs::absolute(path);
  std::error_code ec;
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  struct statvfs st {};
  if (::statvfs(p.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

int64_t tree_bytes(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return static_cast<int64_t>(fs::file_size(path, ec));
  int64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code ec2;
    if (it->is_regular_file(ec2)) total += static_cast<int64_t>(it->file_size(ec2));
  }
  return total;
}

std::string human_bytes(int64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
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
