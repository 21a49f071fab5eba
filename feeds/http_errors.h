// How a failed HTTP request is explained: the error class, whether another attempt may help,
// and a message an operator can act on. Apart from the client so that every class (DNS
// included, which the tests cannot provoke without leaving loopback) is tested directly.
#pragma once

#include <curl/curl.h>

#include <string>
#include <string_view>

#include "feeds/list_body.h"  // Excerpt
#include "feeds/source.h"

namespace iocwall {

struct FailureClass {
  FetchError error = FetchError::kNone;
  bool retryable = false;
  std::string message;
};

// A transfer that libcurl could not complete. errbuf: CURLOPT_ERRORBUFFER's text (may be
// empty); over_cap: the body callback stopped the transfer at the size cap `cap`.
FailureClass ClassifyCurlError(CURLcode code, const char* errbuf, bool over_cap, size_t cap);

// A URL as it may be quoted: without its userinfo ("user:password@"), query and fragment,
// any of which could carry credentials. Control bytes become spaces.
std::string ScrubUrl(std::string_view url);

// A complete answer whose status is not 2xx. body: the answer (quoted in short when it is not
// HTML); location: a redirect's target, already through ScrubUrl.
FailureClass ClassifyHttpStatus(long http, std::string_view body, std::string_view location);

}  // namespace iocwall
