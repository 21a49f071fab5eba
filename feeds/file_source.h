// FileSource: a local list file (one entry per line, the same parser as the feeds), for
// static lists an operator maintains by hand or another tool drops in place.
#pragma once

#include <cstddef>
#include <string>

#include "feeds/source.h"

namespace iocwall {

struct FileSourceOptions {
  std::string path;
  size_t max_bytes = 256u << 20;
  double max_rejected_ratio = 0.5;  // as for feeds: a file of domains is not an IP list
};

class FileSource : public Source {
 public:
  explicit FileSource(FileSourceOptions options) : options_(std::move(options)) {}

  std::string Name() const override { return "file " + options_.path; }
  FetchResult Fetch() override;

 private:
  FileSourceOptions options_;
};

}  // namespace iocwall
