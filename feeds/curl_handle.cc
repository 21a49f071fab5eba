#include "feeds/curl_handle.h"

#include <mutex>

namespace iocwall {

void EnsureCurlGlobalInit() {
  static std::once_flag once;
  // Never cleaned up: handles may live until exit, and curl_global_cleanup is not
  // thread-safe either.
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace iocwall
