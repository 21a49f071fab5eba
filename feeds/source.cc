#include "feeds/source.h"

namespace iocwall {

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
