#include "feeds/source.h"

namespace iocwall {

IdList::IdList(std::initializer_list<std::string_view> ids) {
  for (std::string_view id : ids) push_back(id);
}

IdList::IdList(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) push_back(id);
}

std::string IdList::operator[](size_t i) const {
  const size_t begin = i == 0 ? 0 : ends_[i - 1];
  const auto first = chars_.begin() + static_cast<std::ptrdiff_t>(begin);
  return std::string(first, first + static_cast<std::ptrdiff_t>(ends_[i] - begin));
}

void IdList::push_back(std::string_view id) {
  chars_.insert(chars_.end(), id.begin(), id.end());
  ends_.push_back(chars_.size());
}

void IdList::resize(size_t n) {
  if (n >= size()) {
    ends_.resize(n, chars_.size());
    return;
  }
  chars_.resize(n == 0 ? 0 : ends_[n - 1]);
  ends_.resize(n);
}

void IdList::clear() {
  chars_.clear();
  chars_.shrink_to_fit();
  ends_.clear();
  ends_.shrink_to_fit();
}

const char* FetchErrorName(FetchError e) {
  switch (e) {
    case FetchError::kNone:
      return "none";
    case FetchError::kConfig:
      return "config";
    case FetchError::kAuth:
      return "auth";
    case FetchError::kRateLimited:
      return "rate-limited";
    case FetchError::kServer:
      return "server";
    case FetchError::kNetwork:
      return "network";
    case FetchError::kTls:
      return "tls";
    case FetchError::kTimeout:
      return "timeout";
    case FetchError::kBadBody:
      return "bad-body";
    case FetchError::kTooLarge:
      return "too-large";
    case FetchError::kSecret:
      return "secret";
  }
  return "unknown";
}

}  // namespace iocwall
