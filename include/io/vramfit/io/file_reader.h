// FileReader: the one way the checkpoint parsers read bytes.
//
// The safetensors and GGUF readers never open files themselves: they ask a
// FileReader for N bytes at an offset. A local file, an in-memory buffer (the
// tests and fuzzers), a cached header prefix and a Hub file fetched with HTTP
// range requests all look the same to them. Parsers must check offset + n
// against size() before calling Read, so a hostile length never turns into a
// huge allocation.
#ifndef VRAMFIT_IO_FILE_READER_H_
#define VRAMFIT_IO_FILE_READER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "vramfit/error.h"

namespace vramfit {

class FileReader {
 public:
  virtual ~FileReader() = default;

  // Names the file in error messages: a path, or "hf:org/name/file".
  virtual const std::string& name() const = 0;

  // Size of the whole file in bytes (for a Hub file or a cached header, the
  // size of the file on the Hub, not of the bytes held).
  virtual int64_t size() const = 0;

  // Reads exactly n bytes starting at offset.
  // REQUIRES: 0 <= offset, 0 <= n, offset + n <= size().
  // Errors: kIo (local read failure), kNetwork (Hub fetch failure),
  // kNotFound (a cached prefix that does not hold the range while offline).
  virtual Result<std::string> Read(int64_t offset, int64_t n) = 0;

  // Bytes handed out by Read so far (tests assert parsers read only headers).
  int64_t bytes_read() const { return bytes_read_; }

 protected:
  void CountRead(int64_t n) { bytes_read_ += n; }

 private:
  int64_t bytes_read_ = 0;
};

// Opens a local file for reading. Errors: "<path>: cannot read: <reason>".
Result<std::unique_ptr<FileReader>> OpenLocalFile(const std::string& path);

// A reader over bytes held in memory. `declared_size` is the size the file
// claims to have (default: data.size()); reads inside [data.size(),
// declared_size) fail with "<name>: bytes <a>..<b> are not in the cached
// header (<n> bytes held)", which is how a cached header prefix answers a
// parser that wants more than was stored.
std::unique_ptr<FileReader> NewMemoryReader(std::string name, std::string data,
                                            int64_t declared_size = -1);

}  // namespace vramfit

#endif  // VRAMFIT_IO_FILE_READER_H_
