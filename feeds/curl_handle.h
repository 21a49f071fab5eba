// Move-only owners over libcurl's C handles, so that no path through the feed client can leak
// a connection or a header list, whatever error it returns on.
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace iocwall {

// curl_global_init is not thread-safe and must run once before any handle exists; every
// CurlEasy constructor goes through this.
void EnsureCurlGlobalInit();

class CurlEasy {
 public:
  CurlEasy() {
    EnsureCurlGlobalInit();
    handle_.reset(curl_easy_init());
  }
  CurlEasy(CurlEasy&&) = default;
  CurlEasy& operator=(CurlEasy&&) = default;

  CURL* get() const { return handle_.get(); }
  explicit operator bool() const { return handle_ != nullptr; }

  template <typename T>
  CURLcode Set(CURLoption option, T value) {
    return curl_easy_setopt(handle_.get(), option, value);
  }

 private:
  struct Deleter {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
  };
  std::unique_ptr<CURL, Deleter> handle_;
};

class CurlSlist {
 public:
  CurlSlist() = default;
  CurlSlist(CurlSlist&&) = default;
  CurlSlist& operator=(CurlSlist&&) = default;

  // Returns false when libcurl could not allocate (the list is left as it was).
  bool Append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_.get(), line.c_str());
    if (next == nullptr) return false;
    (void)list_.release();  // the old head is now owned through `next`
    list_.reset(next);
    return true;
  }
  curl_slist* get() const { return list_.get(); }

 private:
  struct Deleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
  };
  std::unique_ptr<curl_slist, Deleter> list_;
};

// curl_easy_escape's result, freed with curl_free.
inline std::string CurlEscape(CURL* curl, const std::string& text) {
  std::unique_ptr<char, decltype(&curl_free)> escaped(
      curl_easy_escape(curl, text.data(), static_cast<int>(text.size())), &curl_free);
  return escaped ? std::string(escaped.get()) : std::string();
}

}  // namespace iocwall
