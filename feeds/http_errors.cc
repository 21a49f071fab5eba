#include "feeds/http_errors.h"

namespace iocwall {

FailureClass ClassifyCurlError(CURLcode code, const char* errbuf, bool over_cap, size_t cap) {
  std::string detail = errbuf != nullptr && errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code);
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return {FetchError::kNetwork, true, "cannot resolve the host name (DNS): " + detail};
    case CURLE_COULDNT_RESOLVE_PROXY:
      return {FetchError::kNetwork, true, "cannot resolve the proxy's host name: " + detail};
    case CURLE_COULDNT_CONNECT:
      return {FetchError::kNetwork, true, "cannot connect: " + detail};
    case CURLE_OPERATION_TIMEDOUT:
      return {FetchError::kTimeout, true, "timed out: " + detail};
    case CURLE_PARTIAL_FILE:
      return {FetchError::kBadBody, true,
              "truncated answer (connection closed mid-body): " + detail};
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return {FetchError::kNetwork, true, "connection failed: " + detail};
    case CURLE_PEER_FAILED_VERIFICATION:
      return {FetchError::kTls, false,
              "TLS certificate not trusted (check ca_file and the server's name): " + detail};
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return {FetchError::kTls, false, "TLS handshake failed: " + detail};
    case CURLE_SSL_CACERT_BADFILE:
      return {FetchError::kTls, false, "cannot load ca_file: " + detail};
    case CURLE_FILESIZE_EXCEEDED:
      return {FetchError::kTooLarge, false,
              "answer larger than max_body_bytes (" + std::to_string(cap) + " bytes)"};
    case CURLE_WRITE_ERROR:
      if (over_cap) {
        return {FetchError::kTooLarge, false,
                "answer larger than max_body_bytes (" + std::to_string(cap) + " bytes)"};
      }
      return {FetchError::kNetwork, false, "cannot store the answer: " + detail};
    case CURLE_BAD_CONTENT_ENCODING:
      return {FetchError::kBadBody, false, "undecodable compressed answer: " + detail};
    case CURLE_WEIRD_SERVER_REPLY:
      return {FetchError::kBadBody, false, "not an HTTP answer: " + detail};
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return {FetchError::kConfig, false, "bad url: " + detail};
    default:
      return {FetchError::kNetwork, true, detail};
  }
}

std::string ScrubUrl(std::string_view url) {
  url = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = url.find("://");
  const size_t host = scheme == std::string_view::npos ? 0 : scheme + 3;
  const size_t path = url.find('/', host);
  const size_t at = url.substr(0, path).rfind('@');
  std::string out(url.substr(0, host));
  if (at != std::string_view::npos && at >= host) {
    out += "[credentials removed]@";
    out += url.substr(at + 1);
  } else {
    out += url.substr(host);
  }
  for (char& c : out) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  }
  return out;
}

FailureClass ClassifyHttpStatus(long http, std::string_view body, std::string_view location) {
  const std::string head = "HTTP " + std::to_string(http) + ": ";
  std::string said;
  if (!body.empty() && body.find('<') == std::string::npos) {
    said = " (server said: \"" + Excerpt(body) + "\")";
  }
  if (http >= 300 && http < 400) {
    return {FetchError::kConfig, false,
            head + "unexpected redirect" +
                (location.empty() ? std::string() : " to " + std::string(location)) +
                " (check url)"};
  }
  switch (http) {
    case 400:
      return {FetchError::kConfig, false,
              head + "request refused (check url and collection_id)" + said};
    case 404:
      return {FetchError::kConfig, false,
              head + "collection not found (check url and collection_id)" + said};
    case 401:
      return {FetchError::kAuth, false,
              head +
                  "API key rejected (check api_key_file and the key's "
                  "INTHREAT_READ_IOC_COLLECTIONS permission)"};
    case 403:
      return {FetchError::kAuth, false,
              head +
                  "access denied (the API key needs the INTHREAT_READ_IOC_COLLECTIONS "
                  "permission on this collection)"};
    case 407:
      return {FetchError::kNetwork, false, head + "the proxy wants credentials (check proxy)"};
    case 408:
      return {FetchError::kTimeout, true, head + "the server timed out waiting"};
    case 429:
      return {FetchError::kRateLimited, true, head + "rate limited"};
    default:
      break;
  }
  if (http >= 500) return {FetchError::kServer, true, head + "server error" + said};
  if (http >= 400) return {FetchError::kConfig, false, head + "request refused" + said};
  return {FetchError::kBadBody, false, head + "unexpected status"};
}

}  // namespace iocwall
