#include "feeds/feedsim/server.h"

#include <httplib.h>
#include <zlib.h>

#include <chrono>
#include <optional>
#include <random>
#include <sstream>

#include "feeds/feedsim/sim_time.h"

namespace iocwall::feedsim {

namespace {

using nlohmann::json;

constexpr size_t kMaxTextLimit = 10000;
constexpr size_t kMaxJsonLimit = 2000;

std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

struct AuthCheck {
  std::string scheme;  // "basic", "bearer", "none", "other"
  bool ok = false;
};

AuthCheck CheckAuth(const httplib::Request& req, const SimOptions& o) {
  AuthCheck a;
  const std::string h = req.get_header_value("Authorization");
  if (h.empty()) {
    a.scheme = "none";
    return a;
  }
  std::string presented;
  if (h.rfind("Basic ", 0) == 0) {
    a.scheme = "basic";
    const std::string decoded = Base64Decode(h.substr(6));
    const size_t colon = decoded.find(':');
    if (colon != std::string::npos) presented = decoded.substr(colon + 1);
  } else if (h.rfind("Bearer ", 0) == 0) {
    a.scheme = "bearer";
    presented = h.substr(7);
  } else {
    a.scheme = "other";
    return a;
  }
  const bool scheme_allowed = o.auth == "any" || o.auth == a.scheme;
  a.ok = scheme_allowed && !o.api_key.empty() && presented == o.api_key;
  return a;
}

void JsonError(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"message", message}, {"code", status}}.dump(), "application/json");
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

json IndicatorJson(const Indicator& ind) {
  const std::string pattern_type = ind.type == "unknown" ? "x-unknown" : ind.type;
  std::string literal;
  for (char c : ind.value) {
    if (c == '\'' || c == '\\') literal.push_back('\\');
    literal.push_back(c);
  }
  return json{
      {"id", ind.id},
      {"type", "indicator"},
      {"spec_version", "2.1"},
      {"name", ind.value},
      {"pattern", "[" + pattern_type + ":value = '" + literal + "']"},
      {"pattern_type", "stix"},
      {"modified", FormatTime(ind.modified)},
      {"valid_from", FormatTime(ind.valid_from)},
      {"valid_until", ind.valid_until == 0 ? json(nullptr) : json(FormatTime(ind.valid_until))},
      {"revoked", ind.revoked},
      {"x_ic_observable_types", json::array({ind.type})},
  };
}

// Query flags are "true" or "false"; anything else is a 400.
bool BoolParam(const httplib::Request& req, const char* name, bool fallback, bool* out) {
  if (!req.has_param(name)) {
    *out = fallback;
    return true;
  }
  const std::string v = req.get_param_value(name);
  if (v != "true" && v != "false") return false;
  *out = v == "true";
  return true;
}

// gzip (RFC 1952) at zlib's default level; empty on failure.
std::string Gzip(const std::string& in) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

// Sends `body` as is: httplib compresses bodies given with set_content on its own (brotli at
// its slowest setting), while the simulator decides its encoding itself (--compression).
void SetBody(httplib::Response& res, std::string body, const char* type, size_t cut) {
  if (body.empty()) {  // httplib never completes a zero-length content provider
    res.set_content("", type);
    return;
  }
  auto shared = std::make_shared<std::string>(std::move(body));
  cut = std::min(cut, shared->size());
  res.set_content_provider(shared->size(), type,
                           [shared, cut](size_t offset, size_t length, httplib::DataSink& sink) {
                             const size_t end = std::min(offset + length, cut);
                             if (offset < end) sink.write(shared->data() + offset, end - offset);
                             return end >= offset + length;  // false: hang up mid-body
                           });
}

std::string CollectionFromPath(const httplib::Request& req) {
  return req.matches.size() > 2 ? req.matches[2].str() : std::string();
}

}  // namespace

bool ParseFault(const json& j, Fault* f, std::string* err) {
  static const std::pair<const char*, bool Fault::*> kFlags[] = {
      {"garbage", &Fault::garbage},
      {"empty", &Fault::empty},
      {"html", &Fault::html},
      {"crlf", &Fault::crlf},
      {"bom", &Fault::bom},
      {"repeat_cursor", &Fault::repeat_cursor},
      {"drop_cursor", &Fault::drop_cursor}};
  static const std::pair<const char*, int Fault::*> kInts[] = {{"status", &Fault::status},
                                                               {"slow_ms", &Fault::slow_ms},
                                                               {"skip", &Fault::skip},
                                                               {"times", &Fault::times}};
  if (!j.is_object()) {
    *err = "a fault is a JSON object";
    return false;
  }
  try {
    for (const auto& [key, value] : j.items()) {
      bool known = false;
      for (const auto& [name, field] : kFlags) {
        if (key == name) f->*field = value.get<bool>(), known = true;
      }
      for (const auto& [name, field] : kInts) {
        if (key == name) f->*field = value.get<int>(), known = true;
      }
      if (key == "retry_after") {
        f->retry_after =
            value.is_string() ? value.get<std::string>() : std::to_string(value.get<int64_t>());
        known = true;
      } else if (key == "cut_after_bytes") {
        f->cut_after_bytes = value.get<int64_t>();
        known = true;
      }
      if (!known) {
        *err = "unknown fault field \"" + key + "\"";
        return false;
      }
    }
  } catch (const json::exception& e) {
    *err = std::string("bad fault field: ") + e.what();
    return false;
  }
  return true;
}

SimServer::SimServer(SimOptions options, Store* store)
    : options_(std::move(options)), store_(store) {
  clock_offset_ = options_.clock_offset;
  for (const Fault& f : options_.faults) faults_.push_back(f);
}

SimServer::~SimServer() {
  Stop();
  if (log_ != nullptr) fclose(log_);
}

int64_t SimServer::Now() const {
  return static_cast<int64_t>(time(nullptr)) + clock_offset_.load();
}

void SimServer::Log(json line) {
  std::lock_guard<std::mutex> lock(mu_);
  line["seq"] = ++requests_;
  if (log_ == nullptr) return;
  const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  fwrite(text.data(), 1, text.size(), log_);
  fflush(log_);  // tests read the log while the simulator runs
}

std::optional<Fault> SimServer::TakeFault() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!faults_.empty()) {
    Fault& f = faults_.front();
    if (f.skip > 0) {
      --f.skip;
      return std::nullopt;
    }
    if (f.times == 0) {
      faults_.pop_front();
      continue;
    }
    Fault taken = f;
    if (f.times > 0 && --f.times == 0) faults_.pop_front();
    return taken;
  }
  return std::nullopt;
}

void SimServer::Register(httplib::Server& server, bool tls) {
  server.set_keep_alive_max_count(options_.keep_alive_max);
  // Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm and the
  // client's delayed ACK would add 40 ms to every page.
  server.set_tcp_nodelay(true);
  server.set_payload_max_length(16u << 20);

  // Answers everything that is not a page (auth failures, faults, bad queries), logged.
  auto base_log = [tls](const httplib::Request& req, const AuthCheck& auth) {
    json params = json::object();
    for (const auto& [k, v] : req.params) params[k] = v;
    return json{{"time", FormatTime(time(nullptr))},
                {"method", req.method},
                {"path", req.path},
                {"params", params},
                {"tls", tls},
                {"remote_port", req.remote_port},
                {"auth_scheme", auth.scheme},
                {"auth_ok", auth.ok},
                {"user_agent", req.get_header_value("User-Agent")},
                {"accept", req.get_header_value("Accept")},
                {"accept_encoding", req.get_header_value("Accept-Encoding")}};
  };

  server.Get(
      R"((/.*)?/v2/inthreat/collections/([^/]+)/objects)",
      [this, base_log](const httplib::Request& req, httplib::Response& res) {
        const AuthCheck auth = CheckAuth(req, options_);
        json log = base_log(req, auth);
        const std::optional<Fault> fault = TakeFault();
        if (fault) {
          log["fault"] = true;
          if (fault->slow_ms > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(fault->slow_ms));
          }
        }
        auto finish = [&](int status) {
          log["status"] = status;
          Log(std::move(log));
        };
        if (!auth.ok) {
          JsonError(res, 401, "Unauthorized");
          return finish(401);
        }
        if (fault && fault->status != 0) {
          JsonError(res, fault->status, "simulated failure");
          if (!fault->retry_after.empty()) res.set_header("Retry-After", fault->retry_after);
          return finish(fault->status);
        }
        if (fault && fault->html) {
          res.set_content(
              "<!DOCTYPE html>\n<html><head><title>Proxy error</title></head>"
              "<body><h1>502 Bad Gateway</h1><p>The proxy could not reach the "
              "server.</p></body></html>\n",
              "text/html; charset=utf-8");
          return finish(200);
        }
        if (fault && fault->garbage) {
          std::mt19937 rng(12345);
          std::string junk(4096, '\0');
          for (char& c : junk) c = static_cast<char>(rng() & 0xff);
          res.set_content(junk, "text/plain");
          return finish(200);
        }
        if (fault && fault->empty) {
          res.set_content("", "text/plain");
          return finish(200);
        }
        const std::string format = req.has_param("format") ? req.get_param_value("format") : "json";
        if (format != "text" && format != "json") {
          JsonError(res, 400, "format must be text or json in this simulator");
          return finish(400);
        }
        const size_t max_limit = format == "text" ? kMaxTextLimit : kMaxJsonLimit;
        size_t limit = 100;
        if (req.has_param("limit")) {
          const std::string v = req.get_param_value("limit");
          char* end = nullptr;
          const unsigned long n = strtoul(v.c_str(), &end, 10);
          if (v.empty() || *end != '\0' || n < 1 || n > max_limit) {
            JsonError(res, 400, "limit must be 1.." + std::to_string(max_limit));
            return finish(400);
          }
          limit = n;
        }
        PageRequest page_req;
        page_req.limit = limit;
        page_req.now = Now();
        if (!BoolParam(req, "skip_expired", false, &page_req.skip_expired) ||
            !BoolParam(req, "include_revoked", true, &page_req.include_revoked)) {
          JsonError(res, 400, "skip_expired and include_revoked take true or false");
          return finish(400);
        }
        const bool has_modified_after = req.has_param("modified_after");
        if (options_.strict_query &&
            (format != "text" || limit != kMaxTextLimit || !page_req.skip_expired ||
             page_req.include_revoked || has_modified_after)) {
          JsonError(res, 400, "strict mode: the seed article's query is expected");
          return finish(400);
        }
        const std::string cursor_in = req.has_param("cursor") ? req.get_param_value("cursor") : "";
        if (has_modified_after) {
          // Sekoia's documentation: modified_after is not to be combined with cursor (the
          // cursor of a walk begun with modified_after carries it).
          if (!cursor_in.empty()) {
            JsonError(res, 400, "modified_after cannot be combined with cursor");
            return finish(400);
          }
          page_req.modified_after = ParseTime(req.get_param_value("modified_after"));
          if (!page_req.modified_after) {
            JsonError(res, 400, "modified_after must be an RFC 3339 UTC time");
            return finish(400);
          }
        }
        if (!cursor_in.empty()) {
          const auto state = DecodeCursor(cursor_in);
          if (!state) {
            JsonError(res, 400, "invalid cursor");
            return finish(400);
          }
          page_req.offset = state->offset;
          page_req.modified_after = state->modified_after;
        }
        if (page_req.modified_after) log["modified_after"] = FormatTime(*page_req.modified_after);
        const std::string id = CollectionFromPath(req);
        std::string body;
        std::string cursor_out;
        json items = json::array();  // format=json, serialised once the cursor is final
        size_t count = 0;
        {
          std::lock_guard<std::mutex> lock(store_->mutex());
          if (!store_->Has(id)) {
            JsonError(res, 404, "Feed not found");
            return finish(404);
          }
          const Page page = store_->Scan(id, page_req);
          count = page.items.size();
          // Text sends a cursor with every non-empty page; JSON's next_cursor is null on the last.
          const bool more = format == "text" ? count > 0 : !page.at_end && count == limit;
          if (more) cursor_out = EncodeCursor(page.next_offset, page_req.modified_after);
          if (format == "text") {
            body.reserve(count * 16);
            for (const Indicator* ind : page.items) {
              body += ind->value;
              body += '\n';
            }
          } else {
            for (const Indicator* ind : page.items) items.push_back(IndicatorJson(*ind));
          }
        }
        if (fault && fault->repeat_cursor)
          cursor_out = cursor_in.empty() ? EncodeCursor(0) : cursor_in;
        if (fault && fault->drop_cursor) cursor_out.clear();
        if (format == "json") {
          json page{{"items", std::move(items)},
                    {"next_cursor", cursor_out.empty() ? json(nullptr) : json(cursor_out)}};
          // A dropped cursor is a missing field, not the null that ends a walk.
          if (fault && fault->drop_cursor) page.erase("next_cursor");
          body = page.dump();
        }
        if (fault && fault->crlf) {
          std::string crlf;
          crlf.reserve(body.size() + count);
          for (char c : body) {
            if (c == '\n') crlf += '\r';
            crlf += c;
          }
          body.swap(crlf);
        }
        if (fault && fault->bom) body.insert(0, "\xEF\xBB\xBF");
        if (format == "text" && !cursor_out.empty()) res.set_header("Cursor", cursor_out);
        log["entries"] = count;
        log["bytes"] = body.size();
        log["cursor_in"] = cursor_in;
        log["cursor_out"] = cursor_out;
        const char* type = format == "text" ? "text/plain; charset=utf-8" : "application/json";
        size_t cut = body.size();
        if (fault && fault->cut_after_bytes >= 0) {
          cut = static_cast<size_t>(fault->cut_after_bytes);
          log["cut_after_bytes"] = cut;
        } else if (options_.compression == "gzip" &&
                   req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos) {
          std::string packed = Gzip(body);
          if (!packed.empty()) {
            body.swap(packed);
            cut = body.size();
            res.set_header("Content-Encoding", "gzip");
            log["content_encoding"] = "gzip";
          }
        }
        SetBody(res, std::move(body), type, cut);
        finish(200);
      });

  auto writer = [this, base_log](bool revoke) {
    return [this, base_log, revoke](const httplib::Request& req, httplib::Response& res) {
      const AuthCheck auth = CheckAuth(req, options_);
      json log = base_log(req, auth);
      auto finish = [&](int status) {
        log["status"] = status;
        Log(std::move(log));
      };
      if (!auth.ok) {
        JsonError(res, 401, "Unauthorized");
        return finish(401);
      }
      const json body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || !body.contains("indicators") ||
          !body["indicators"].is_string()) {
        JsonError(res, 400, "expected {\"indicators\": \"a\\nb\", ...}");
        return finish(400);
      }
      const std::vector<std::string> values = SplitLines(body["indicators"].get<std::string>());
      const std::string id = CollectionFromPath(req);
      std::lock_guard<std::mutex> lock(store_->mutex());
      if (!store_->Has(id)) {
        JsonError(res, 404, "IOC collection not found");
        return finish(404);
      }
      if (revoke) {
        const size_t n = store_->Revoke(id, values, Now());
        log["revoked"] = n;
        res.set_content(json{{"revoked", n}}.dump(), "application/json");
        return finish(200);
      }
      const std::string format = body.value("format", std::string("ipv4-addr.value"));
      if (format != "ipv4-addr.value" && format != "ipv6-addr.value") {
        JsonError(res, 400, "format must be ipv4-addr.value or ipv6-addr.value");
        return finish(400);
      }
      const int64_t now = Now();
      int64_t valid_until = now + int64_t{options_.valid_days} * 86400;
      if (body.contains("valid_for") && body["valid_for"].is_number_integer()) {
        valid_until = now + body["valid_for"].get<int64_t>() * 86400;
      }
      if (body.contains("valid_until") && body["valid_until"].is_string()) {
        const auto t = ParseTime(body["valid_until"].get<std::string>());
        if (!t) {
          JsonError(res, 400, "valid_until must be an RFC 3339 UTC time");
          return finish(400);
        }
        valid_until = *t;
      }
      const AddOutcome out =
          store_->Add(id, values, format.substr(0, format.find('.')), now, valid_until);
      log["created"] = out.created;
      log["updated"] = out.updated;
      res.status = 202;
      res.set_content(
          json{{"created", out.created}, {"updated", out.updated}, {"ignored", out.ignored}}.dump(),
          "application/json");
      finish(202);
    };
  };
  server.Post(R"((/.*)?/v2/inthreat/ioc-collections/([^/]+)/indicators/text)", writer(false));
  server.Post(R"((/.*)?/v2/inthreat/ioc-collections/([^/]+)/indicators/revoke)", writer(true));

  server.Post("/_sim/fault", [this](const httplib::Request& req, httplib::Response& res) {
    Fault f;
    std::string err;
    const json j = json::parse(req.body, nullptr, false);
    if (!ParseFault(j, &f, &err)) return JsonError(res, 400, err);
    std::lock_guard<std::mutex> lock(mu_);
    faults_.push_back(f);
    res.set_content(json{{"queued", faults_.size()}}.dump(), "application/json");
  });
  server.Delete("/_sim/fault", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.clear();
    res.set_content("{}", "application/json");
  });
  server.Get("/_sim/clock", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"now", Now()}, {"offset_seconds", clock_offset_.load()}}.dump(),
                    "application/json");
  });
  server.Post("/_sim/clock", [this](const httplib::Request& req, httplib::Response& res) {
    const json j = json::parse(req.body, nullptr, false);
    if (j.is_object() && j.contains("offset_seconds") && j["offset_seconds"].is_number_integer()) {
      clock_offset_ = j["offset_seconds"].get<int64_t>();
    } else if (j.is_object() && j.contains("advance_seconds") &&
               j["advance_seconds"].is_number_integer()) {
      clock_offset_ += j["advance_seconds"].get<int64_t>();
    } else {
      return JsonError(res, 400, "expected {\"offset_seconds\": N} or {\"advance_seconds\": N}");
    }
    res.set_content(json{{"now", Now()}, {"offset_seconds", clock_offset_.load()}}.dump(),
                    "application/json");
  });
  server.Get("/_sim/stats", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    res.set_content(json{{"requests", requests_}, {"faults_queued", faults_.size()}}.dump(),
                    "application/json");
  });
}

bool SimServer::Start(std::string* err) {
  if (!options_.request_log.empty()) {
    log_ = fopen(options_.request_log.c_str(), "a");
    if (log_ == nullptr) {
      *err = "cannot open the request log " + options_.request_log;
      return false;
    }
  }
  auto bind = [&](httplib::Server& s, int port, int* bound) {
    *bound = port == 0 ? s.bind_to_any_port(options_.host)
                       : (s.bind_to_port(options_.host, port) ? port : -1);
    return *bound > 0;
  };
  if (options_.http_port >= 0) {
    http_ = std::make_unique<httplib::Server>();
    Register(*http_, false);
    if (!bind(*http_, options_.http_port, &http_port_)) {
      *err = "cannot listen on " + options_.host + ":" + std::to_string(options_.http_port);
      return false;
    }
  }
  if (options_.https_port >= 0) {
    auto tls =
        std::make_unique<httplib::SSLServer>(options_.cert_file.c_str(), options_.key_file.c_str());
    if (!tls->is_valid()) {
      *err =
          "cannot load the TLS certificate " + options_.cert_file + " or key " + options_.key_file;
      return false;
    }
    https_ = std::move(tls);
    Register(*https_, true);
    if (!bind(*https_, options_.https_port, &https_port_)) {
      *err = "cannot listen on " + options_.host + ":" + std::to_string(options_.https_port);
      return false;
    }
  }
  for (httplib::Server* s : {http_.get(), https_.get()}) {
    if (s != nullptr) threads_.emplace_back([s] { s->listen_after_bind(); });
  }
  return true;
}

void SimServer::Stop() {
  for (httplib::Server* s : {http_.get(), https_.get()}) {
    if (s != nullptr) s->stop();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace iocwall::feedsim
