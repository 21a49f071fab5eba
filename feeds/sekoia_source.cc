#include "feeds/sekoia_source.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <string_view>
#include <utility>

#include "core/text.h"
#include "feeds/curl_handle.h"
#include "feeds/http_errors.h"
#include "feeds/list_body.h"
#include "feeds/secret_file.h"
#include "feeds/stix.h"

#ifndef IOCWALL_VERSION
#define IOCWALL_VERSION "0.0.0"
#endif

namespace iocwall {

namespace {

constexpr int kMaxTextLimit = 10000;
constexpr int kMaxJsonLimit = 2000;

// What the libcurl callbacks fill during one request.
struct Transfer {
  std::string body;
  size_t body_cap = 0;
  bool over_cap = false;
  std::string cursor;    // the Cursor header (format=text paging)
  std::string location;  // a redirect's target, quoted in its error
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->body.size() + n > t->body_cap) {
    t->over_cap = true;
    return 0;  // makes libcurl abort with CURLE_WRITE_ERROR
  }
  t->body.append(data, n);
  return n;
}

// The last value of a header of the final response, at most max bytes. libcurl files the
// headers of each response of a request apart, so a 100 Continue's or a proxy CONNECT answer's
// never stand in for the server's.
std::string FinalHeader(CURL* curl, const char* name, size_t max) {
  curl_header* h = nullptr;
  if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == nullptr) {
    return {};
  }
  // A repeated header: the last one wins, as it did when the lines were read one by one.
  if (h->amount > 1 &&
      curl_easy_header(curl, name, h->amount - 1, CURLH_HEADER, -1, &h) != CURLHE_OK) {
    return {};
  }
  return std::string(std::string_view(h->value).substr(0, max));
}

// Retry-After in seconds, delta-seconds or an HTTP date alike (libcurl reads both). Asked only
// when this answer has the header: the handle's figure is the last one it saw.
std::optional<int64_t> RetryAfter(CURL* curl) {
  curl_header* h = nullptr;
  if (curl_easy_header(curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK) {
    return std::nullopt;
  }
  curl_off_t seconds = 0;
  // 0 is also libcurl's word for a value it cannot read and for a date already past: either
  // way there is nothing to wait for, and back-off keeps its own delay.
  if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &seconds) != CURLE_OK || seconds <= 0) {
    return std::nullopt;
  }
  // Bounded so that it fits FetchResult's int; the fetch budget refuses such a wait anyway.
  return std::min<int64_t>(seconds, int64_t{86400} * 365);
}

// One whole fetch: owns the handle, the key and the result being built.
class FetchRun {
 public:
  // modified_after: a changes fetch (format=json only) of what was created, modified,
  // revoked or expired after that time; nullopt: the whole list.
  FetchRun(const SekoiaOptions& o, Clock* clock, Backoff* backoff,
           std::optional<int64_t> modified_after, const ProgressCallback& progress, FetchResult* r)
      : o_(o),
        clock_(clock),
        backoff_(backoff),
        modified_after_(modified_after),
        progress_(progress),
        r_(r),
        start_clock_(clock->Now()),
        start_real_(std::chrono::steady_clock::now()) {}
  ~FetchRun() { backoff_->SetFetchHooks(nullptr, nullptr); }

  void Run();
  // Every form of the key: applied to whatever a message quotes from the server or libcurl.
  const KeyScrubber& scrubber() const { return scrub_; }

 private:
  void Fail(FetchError e, const std::string& message) {
    r_->error = e;
    r_->status = Status::Error(message);
  }
  bool Setup();
  // Fetches one page with retries into transfer_. False when the fetch must stop (r_ failed).
  bool FetchPage(const std::string& url, size_t page_no);
  bool TakeTextPage(size_t page_no, size_t* entries);
  // *next_cursor: empty when null or absent (nothing follows).
  bool TakeJsonPage(size_t page_no, size_t* entries, std::string* next_cursor);
  std::string PageUrl(const std::string& cursor);
  // Time since the fetch began: the clock's (back-off sleeps; a fake one in tests) or the real
  // one (transfers), whichever says more. In production both are the same clock.
  std::chrono::milliseconds Elapsed() const;
  std::chrono::milliseconds TimeLeft() const { return o_.fetch_timeout - Elapsed(); }
  void Tick(bool force);
  void FailDeadline(size_t page_no);
  static int OnXferInfo(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t);

  const SekoiaOptions& o_;
  Clock* clock_;
  Backoff* backoff_;
  const std::optional<int64_t> modified_after_;
  const ProgressCallback& progress_;
  FetchResult* r_;
  const std::chrono::steady_clock::time_point start_clock_;
  const std::chrono::steady_clock::time_point start_real_;
  std::chrono::steady_clock::time_point last_tick_{};
  Secret key_;
  KeyScrubber scrub_;
  CurlEasy curl_;
  CurlSlist headers_;
  Transfer transfer_;
  char errbuf_[CURL_ERROR_SIZE] = {};
  int limit_ = 0;
};

std::chrono::milliseconds FetchRun::Elapsed() const {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  return std::max(duration_cast<milliseconds>(clock_->Now() - start_clock_),
                  duration_cast<milliseconds>(std::chrono::steady_clock::now() - start_real_));
}

void FetchRun::Tick(bool force) {
  if (!progress_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_tick_ < std::chrono::seconds(1)) return;
  last_tick_ = now;
  FetchProgress p;
  p.pages = r_->pages;
  p.bytes = r_->bytes;
  p.seconds = std::chrono::duration<double>(Elapsed()).count();
  progress_(p);
}

int FetchRun::OnXferInfo(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  static_cast<FetchRun*>(user)->Tick(false);
  return 0;  // the deadline is enforced through CURLOPT_TIMEOUT_MS
}

void FetchRun::FailDeadline(size_t page_no) {
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(o_.fetch_timeout).count();
  Fail(FetchError::kTimeout,
       "the whole fetch took longer than fetch_timeout (" + std::to_string(secs) + " s) at page " +
           std::to_string(page_no) + ", after " + Count(r_->bytes, "byte", "bytes") + " in " +
           Count(r_->pages, "page", "pages") +
           ": the server or a proxy is too slow (dribbling?); the last good list stays. "
           "Raise [api] fetch_timeout if the collection is that large");
}

bool FetchRun::Setup() {
  if (!curl_) {
    Fail(FetchError::kNetwork, "cannot initialise libcurl");
    return false;
  }
  const bool text = o_.format == SekoiaFormat::kText;
  const int max_limit = text ? kMaxTextLimit : kMaxJsonLimit;
  limit_ = o_.page_limit > 0 ? std::min(o_.page_limit, max_limit) : max_limit;
  const std::string ua = o_.user_agent.empty() ? DefaultUserAgent() : o_.user_agent;
  CURLcode rc = CURLE_OK;
  auto set = [&](CURLoption opt, auto value) {
    if (rc == CURLE_OK) rc = curl_.Set(opt, value);
  };
  set(CURLOPT_NOSIGNAL, 1L);
  set(CURLOPT_ERRORBUFFER, errbuf_);
  set(CURLOPT_PROTOCOLS_STR, o_.allow_http ? "http,https" : "https");
  set(CURLOPT_FOLLOWLOCATION, 0L);  // credentials must not follow a redirect elsewhere
  set(CURLOPT_SSL_VERIFYPEER, 1L);
  set(CURLOPT_SSL_VERIFYHOST, 2L);
  if (!o_.ca_file.empty()) set(CURLOPT_CAINFO, o_.ca_file.c_str());
  // An empty proxy string disables the environment's *_proxy variables: the configuration
  // alone decides where the key is sent.
  set(CURLOPT_PROXY, o_.proxy.c_str());
  set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o_.connect_timeout.count()));
  set(CURLOPT_TIMEOUT_MS, static_cast<long>(o_.request_timeout.count()));
  set(CURLOPT_ACCEPT_ENCODING, "");  // every encoding this libcurl decodes
  set(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  set(CURLOPT_TCP_KEEPALIVE, 1L);
  set(CURLOPT_USERAGENT, ua.c_str());
  if (o_.auth == SekoiaAuth::kBasic) {
    set(CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    set(CURLOPT_USERNAME, o_.basic_user.c_str());
    set(CURLOPT_PASSWORD, key_.c_str());
  } else {
    set(CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BEARER));
    set(CURLOPT_XOAUTH2_BEARER, key_.c_str());
  }
  if (!headers_.Append(text ? "Accept: text/plain" : "Accept: application/json")) {
    rc = CURLE_OUT_OF_MEMORY;
  }
  set(CURLOPT_HTTPHEADER, headers_.get());
  set(CURLOPT_WRITEFUNCTION, &OnBody);
  set(CURLOPT_WRITEDATA, &transfer_);
  // libcurl calls this about once a second even when no byte arrives: a dribbling transfer
  // still shows progress to the caller's watchdog, and the deadline still applies.
  set(CURLOPT_XFERINFOFUNCTION, &FetchRun::OnXferInfo);
  set(CURLOPT_XFERINFODATA, this);
  set(CURLOPT_NOPROGRESS, 0L);
  if (rc != CURLE_OK) {
    Fail(FetchError::kConfig, std::string("libcurl refused an option: ") + curl_easy_strerror(rc));
    return false;
  }
  return true;
}

std::string FetchRun::PageUrl(const std::string& cursor) {
  std::string base = o_.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string url = base + "/v2/inthreat/collections/" + CurlEscape(curl_.get(), o_.collection_id) +
                    "/objects?format=" + (o_.format == SekoiaFormat::kText ? "text" : "json") +
                    "&limit=" + std::to_string(limit_);
  // A changes fetch must see expiries and revocations too: they are changes to apply.
  url += modified_after_ ? "&skip_expired=false&include_revoked=true"
                         : "&skip_expired=true&include_revoked=false";
  if (!cursor.empty()) {
    // The API refuses modified_after next to a cursor: the cursor carries the filter on.
    url += "&cursor=" + CurlEscape(curl_.get(), cursor);
  } else if (modified_after_) {
    url += "&modified_after=" + CurlEscape(curl_.get(), FormatRfc3339(*modified_after_));
  }
  return url;
}

// Long on purpose: one request and every way its answer can fail (transport, HTTP status,
// content type, body, paging signals), in the order they are judged, so that which error an
// operator sees for a page stays readable in one place.
bool FetchRun::FetchPage(const std::string& url, size_t page_no) {
  const std::string where = page_no > 1 ? " (page " + std::to_string(page_no) + ")" : "";
  if (curl_.Set(CURLOPT_URL, url.c_str()) != CURLE_OK) {
    Fail(FetchError::kConfig, "bad url " + o_.url);
    return false;
  }
  for (int attempt = 1;; ++attempt) {
    if (TimeLeft() <= std::chrono::milliseconds(0)) {
      FailDeadline(page_no);
      return false;
    }
    Status slot = backoff_->AwaitSlot();
    if (!slot.ok()) {
      // Only reachable after a failed attempt or with a pause left by an earlier fetch.
      if (r_->error == FetchError::kNone) r_->error = FetchError::kRateLimited;
      r_->status = Status::Error((r_->status.ok() ? std::string() : r_->status.message() + "; ") +
                                 slot.message());
      return false;
    }
    transfer_ = Transfer{};
    transfer_.body_cap = o_.max_body_bytes - std::min(o_.max_body_bytes, r_->bytes);
    // Lets libcurl refuse an announced oversize body before reading it.
    curl_.Set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(transfer_.body_cap));
    errbuf_[0] = '\0';
    // This request may use what is left of the whole fetch's deadline, no more.
    const auto left = TimeLeft();
    if (left <= std::chrono::milliseconds(0)) {
      FailDeadline(page_no);
      return false;
    }
    const bool deadline_bound = left < o_.request_timeout;
    curl_.Set(CURLOPT_TIMEOUT_MS, static_cast<long>(std::min(left, o_.request_timeout).count()));
    const CURLcode code = curl_easy_perform(curl_.get());
    if (code == CURLE_OPERATION_TIMEDOUT && deadline_bound) {
      backoff_->RecordAnswer(false);  // no error answer, but the request counts for pacing
      FailDeadline(page_no);
      return false;
    }
    long http = 0;
    curl_easy_getinfo(curl_.get(), CURLINFO_RESPONSE_CODE, &http);
    if (code == CURLE_OK) {
      transfer_.cursor = FinalHeader(curl_.get(), "Cursor", std::string::npos);
      // Quoted in the error (after ScrubUrl and the key scrubber): bounded like an excerpt.
      transfer_.location = FinalHeader(curl_.get(), "Location", 2048);
    }
    r_->http_status = static_cast<int>(http);
    FailureClass f;
    std::optional<int64_t> retry_after;
    if (code != CURLE_OK) {
      // libcurl's text may quote a URL or a header it was given.
      const std::string detail = scrub_.Scrub(errbuf_);
      f = ClassifyCurlError(code, detail.c_str(), transfer_.over_cap, o_.max_body_bytes);
    } else if (http < 200 || http >= 300) {
      // A server (or a proxy) may echo what it received, in its body or in a redirect's
      // Location: every form of the key goes before anything is excerpted into a message
      // (redacting the message afterwards misses a key the excerpt cut in half).
      f = ClassifyHttpStatus(http, scrub_.Scrub(transfer_.body),
                             scrub_.Scrub(ScrubUrl(transfer_.location)));
      retry_after = RetryAfter(curl_.get());
      if (retry_after) r_->retry_after_seconds = static_cast<int>(*retry_after);
    }
    backoff_->RecordAnswer(code == CURLE_OK && http >= 400);
    if (f.error == FetchError::kNone) {
      r_->status = Status::Ok();  // an earlier attempt's failure is forgotten
      r_->error = FetchError::kNone;
      return true;
    }
    std::string message = f.message + where;
    if (retry_after) message += " (Retry-After: " + std::to_string(*retry_after) + " s)";
    if (!f.retryable) {
      Fail(f.error, message);
      return false;
    }
    if (!backoff_->ScheduleRetry(attempt, retry_after)) {
      Fail(f.error, message + "; gave up after " + std::to_string(attempt) +
                        (attempt == 1 ? " attempt" : " attempts"));
      return false;
    }
    Fail(f.error, message);  // kept if the next wait is refused
  }
}

bool FetchRun::TakeTextPage(size_t page_no, size_t* entries) {
  char* content_type = nullptr;
  curl_easy_getinfo(curl_.get(), CURLINFO_CONTENT_TYPE, &content_type);
  Status shape = CheckListShape(transfer_.body, content_type ? content_type : "");
  if (!shape.ok()) {
    Fail(FetchError::kBadBody, shape.message() + " (page " + std::to_string(page_no) + ")");
    return false;
  }
  // Only whether the page is empty matters (see Run).
  *entries = CountEntryLines(transfer_.body);
  ParseBody(transfer_.body, &r_->prefixes, &r_->stats);
  return true;
}

bool FetchRun::TakeJsonPage(size_t page_no, size_t* entries, std::string* next_cursor) {
  IndicatorPageOptions options;
  options.now = clock_->NowUnix();
  options.keep_inactive = modified_after_.has_value();
  IndicatorPage page;
  Status parsed = ParseIndicatorPage(transfer_.body, options, &page, r_);
  if (!parsed.ok()) {
    Fail(FetchError::kBadBody, parsed.message() + " (page " + std::to_string(page_no) + ")");
    return false;
  }
  *entries = page.items;
  *next_cursor = std::move(page.next_cursor);
  return true;
}

void FetchRun::Run() {
  Status valid = o_.Validate();
  if (!valid.ok()) {
    Fail(FetchError::kConfig, valid.message());
    return;
  }
  Status key = ReadSecretFile(o_.api_key_file, &key_);
  if (!key.ok()) {
    Fail(FetchError::kSecret, key.message());
    return;
  }
  scrub_ = KeyScrubber(o_.basic_user, key_.value());
  if (!Setup()) return;
  backoff_->StartFetch();
  backoff_->SetFetchHooks([this] { return TimeLeft(); }, [this] { Tick(true); });
  // The end of a collection is the server's word only: an empty page, or a page without a
  // cursor to the next one. Counting a page's entries against `limit` is not a signal: a blank
  // line, a server that silently caps `limit`, or non-IP entries make a page short without
  // making it the last, and a full last page may carry no cursor.
  std::map<std::string, size_t> requested;  // cursor -> the page it was sent for
  std::string cursor;
  for (size_t page_no = 1;; ++page_no) {
    if (page_no > o_.max_pages) {
      Fail(FetchError::kBadBody, "more than max_pages (" + std::to_string(o_.max_pages) +
                                     ") pages; raise max_pages if the collection is that large");
      return;
    }
    if (!FetchPage(PageUrl(cursor), page_no)) return;
    requested.emplace(cursor, page_no);
    r_->pages = page_no;
    r_->bytes += transfer_.body.size();
    Tick(true);
    size_t entries = 0;
    std::string next;
    if (o_.format == SekoiaFormat::kText) {
      if (!TakeTextPage(page_no, &entries)) return;
      next = transfer_.cursor;
    } else if (!TakeJsonPage(page_no, &entries, &next)) {
      return;
    }
    // Sekoia keeps a cursor on the last page (it is meant to be reusable) and answers the
    // next request with an empty page: both endings are normal.
    if (entries == 0 || next.empty()) break;
    // A page with entries that points back to a page already fetched (itself included) means
    // the server's paging is broken: following it loops, stopping there drops whatever the
    // loop skipped. Neither is a whole collection.
    if (const auto again = requested.find(next); again != requested.end()) {
      Fail(FetchError::kBadBody,
           "page " + std::to_string(page_no) + " (" + Count(entries, "entry", "entries") +
               ") points back to the cursor of page " + std::to_string(again->second) +
               ": the server's paging loops, so the collection cannot be fetched whole; the "
               "last good list stays (a server or proxy fault: report it if it persists)");
      return;
    }
    cursor = std::move(next);
  }
  Status ratio = CheckRejectedRatio(r_->stats, o_.max_rejected_ratio);
  if (!ratio.ok()) Fail(FetchError::kBadBody, ratio.message());
}

}  // namespace

std::string DefaultUserAgent() { return std::string("iocwall/") + IOCWALL_VERSION; }

Status SekoiaOptions::Validate() const {
  if (collection_id.empty()) return Status::Error("collection_id is not set");
  for (char c : collection_id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return Status::Error(
          "collection_id holds a character other than letters, digits, '-', "
          "'_' or '.': copy the Feed ID from the IOC Collections page");
    }
  }
  const bool https = url.rfind("https://", 0) == 0;
  const bool http = url.rfind("http://", 0) == 0;
  if (!https && !http)
    return Status::Error("url must start with https:// (got \"" + ScrubUrl(url) + "\")");
  if (http && !allow_http) {
    return Status::Error(
        "url uses plain http, which would send the API key in clear; use "
        "https, or set allow_http for a local mirror");
  }
  const std::string_view rest = std::string_view(url).substr(https ? 8 : 7);
  const std::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return Status::Error("url has no host");
  if (authority.find('@') != std::string_view::npos) {
    return Status::Error("url must not hold credentials; put the key in api_key_file");
  }
  if (url.find_first_of("?#") != std::string::npos) {
    return Status::Error(
        "url must be the API base (e.g. https://app.sekoia.io/api), without a "
        "query");
  }
  if (api_key_file.empty()) return Status::Error("api_key_file is not set");
  if (page_limit < 0) return Status::Error("page_limit must be positive");
  if (max_pages == 0) return Status::Error("max_pages must be at least 1");
  if (max_body_bytes == 0) return Status::Error("max_body_bytes must be positive");
  if (backoff.max_attempts < 1) return Status::Error("the number of attempts must be at least 1");
  if (fetch_timeout.count() <= 0) return Status::Error("fetch_timeout must be positive");
  return Status::Ok();
}

SekoiaSource::SekoiaSource(SekoiaOptions options, Clock* clock)
    : options_(std::move(options)),
      clock_(clock),
      backoff_(clock, options_.backoff, std::random_device{}()) {}

SekoiaSource::~SekoiaSource() = default;

std::string SekoiaSource::Name() const { return "collection " + options_.collection_id; }

FetchResult SekoiaSource::Fetch() { return Run(std::nullopt); }

bool SekoiaSource::SupportsChanges() const { return options_.format == SekoiaFormat::kJson; }

FetchResult SekoiaSource::FetchChanges(int64_t since_unix) {
  if (!SupportsChanges() || since_unix <= 0) return Fetch();
  return Run(std::max<int64_t>(0, since_unix - kChangesOverlapSeconds));
}

FetchResult SekoiaSource::Run(std::optional<int64_t> modified_after) {
  const auto start = std::chrono::steady_clock::now();
  FetchResult r;
  r.source = Name();
  r.incremental = modified_after.has_value();
  {
    FetchRun run(options_, clock_, &backoff_, modified_after, progress(), &r);
    run.Run();
    if (!r.status.ok()) {
      // The message may quote libcurl or the server; neither may echo the key back.
      r.status = Status::Error(Name() + ": " + run.scrubber().Scrub(r.status.message()));
    }
  }
  if (!r.status.ok()) {
    // Never a half list: nothing of a failed fetch is usable (a half change set either).
    r.prefixes.clear();
    r.valid_until.clear();
    r.valid_from.clear();
    r.ids.clear();
    r.revoked.clear();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace iocwall
