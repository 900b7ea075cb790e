#include "vramfit/io/file_reader.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace vramfit {
namespace {

// A local file read with pread(2); no mapping, no buffering (the parsers
// buffer where they read many small fields).
class LocalFile : public FileReader {
 public:
  LocalFile(std::string path, int fd, int64_t size) : path_(std::move(path)), fd_(fd), size_(size) {}
  ~LocalFile() override { ::close(fd_); }
  LocalFile(const LocalFile&) = delete;
  LocalFile& operator=(const LocalFile&) = delete;

  const std::string& name() const override { return path_; }
  int64_t size() const override { return size_; }

  Result<std::string> Read(int64_t offset, int64_t n) override {
    if (offset < 0 || n < 0 || offset > size_ || n > size_ - offset) {
      return Error{ErrorKind::kInternal,
                   fmt::format("{}: read of {} bytes at offset {} is outside the file ({} bytes)",
                               path_, n, offset, size_)};
    }
    std::string out(static_cast<size_t>(n), '\0');
    int64_t done = 0;
    while (done < n) {
      const ssize_t r = ::pread(fd_, out.data() + done, static_cast<size_t>(n - done),
                                static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Error{ErrorKind::kIo, fmt::format("{}: cannot read at offset {}: {}", path_,
                                                 offset + done, std::strerror(errno))};
      }
      if (r == 0) {
        return Error{ErrorKind::kIo, fmt::format("{}: the file shrank while being read (offset {})",
                                                 path_, offset + done)};
      }
      done += r;
    }
    CountRead(n);
    return out;
  }

 private:
  std::string path_;
  int fd_;
  int64_t size_;
};

class MemoryFile : public FileReader {
 public:
  MemoryFile(std::string name, std::string data, int64_t declared)
      : name_(std::move(name)), data_(std::move(data)), size_(declared) {}

  const std::string& name() const override { return name_; }
  int64_t size() const override { return size_; }

  Result<std::string> Read(int64_t offset, int64_t n) override {
    if (offset < 0 || n < 0 || offset > size_ || n > size_ - offset) {
      return Error{ErrorKind::kInternal,
                   fmt::format("{}: read of {} bytes at offset {} is outside the file ({} bytes)",
                               name_, n, offset, size_)};
    }
    const int64_t held = static_cast<int64_t>(data_.size());
    if (offset + n > held) {
      return NotFound(fmt::format("{}: bytes {}..{} are not in the cached header ({} bytes held)",
                                  name_, offset, offset + n, held));
    }
    CountRead(n);
    return data_.substr(static_cast<size_t>(offset), static_cast<size_t>(n));
  }

 private:
  std::string name_;
  std::string data_;
  int64_t size_;
};

}  // namespace

Result<std::unique_ptr<FileReader>> OpenLocalFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Error{ErrorKind::kIo, fmt::format("{}: cannot read: {}", path, std::strerror(errno))};
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Error{ErrorKind::kIo, fmt::format("{}: cannot read: {}", path, std::strerror(e))};
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Error{ErrorKind::kIo, fmt::format("{}: cannot read: Is a directory", path)};
  }
  return std::unique_ptr<FileReader>(new LocalFile(path, fd, static_cast<int64_t>(st.st_size)));
}

std::unique_ptr<FileReader> NewMemoryReader(std::string name, std::string data,
                                            int64_t declared_size) {
  const int64_t held = static_cast<int64_t>(data.size());
  const int64_t size = declared_size < held ? held : declared_size;
  return std::make_unique<MemoryFile>(std::move(name), std::move(data), size);
}

}  // namespace vramfit
