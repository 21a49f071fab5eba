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
  if (!ind.pattern.empty()) literal.clear();
  return json{
      {"id", ind.id},
      {"type", "indicator"},
      {"spec_version", "2.1"},
      {"name", ind.value},
      {"pattern",
       ind.pattern.empty() ? "[" + pattern_type + ":value = '" + literal + "']" : ind.pattern},
      {"pattern_type", "stix"},
      {"modified", FormatTime(ind.modified)},
      {"valid_from", FormatTime(ind.valid_from)},
      {"valid_until", ind.valid_until == 0 ? json(nullptr) : json(FormatTime(ind.valid_until))},
      {"revoked", ind.revoked},
      {"x_ic_observable_types", json::array({ind.type})},
  };
}

// A full STIX 2.1 indicator as Sekoia serves it, about 3 KB: what a client must wade through
// to find the pattern. Deterministic per indicator, so that tests can compare sizes.
json StixIndicatorJson(const Indicator& ind, const json& minimal) {
  json j = minimal;
  if (ind.valid_until == 0) j.erase("valid_until");  // Sekoia leaves the field out
  j["created"] = FormatTime(ind.valid_from);
  j["created_by_ref"] = "identity--357447d7-9229-4ce1-b7fa-f1b83587048e";
  j["pattern_version"] = "2.1";
  j["indicator_types"] = json::array({"malicious-activity"});
  j["description"] =
      "Infrastructure observed in an intrusion set's operations. The address " + ind.value +
      " hosted a command-and-control server contacted by implants after initial access "
      "through phishing attachments; it also served second-stage payloads over HTTPS with "
      "self-signed certificates. The server answered on ports 443 and 8443 and rotated its "
      "TLS certificates every few days. Related infrastructure shares the same registrar, "
      "autonomous system and JARM fingerprint. Analysts assessed with moderate confidence "
      "that the operators reuse hosting providers across campaigns, and recommend blocking "
      "the address at the perimeter and hunting for past connections in proxy and firewall "
      "logs. This indicator was produced by Sekoia.io's threat intelligence team from "
      "telemetry, sandbox detonations and partner reports; its validity is bounded because "
      "such infrastructure is frequently reassigned to unrelated customers of the provider.";
  j["kill_chain_phases"] =
      json::array({{{"kill_chain_name", "mitre-attack"}, {"phase_name", "command-and-control"}},
                   {{"kill_chain_name", "lockheed-martin-cyber-kill-chain"},
                    {"phase_name", "command-and-control"}},
                   {{"kill_chain_name", "mitre-attack"}, {"phase_name", "initial-access"}}});
  j["labels"] = json::array({"c2", "malware-infrastructure", "phishing"});
  j["confidence"] = 80;
  j["lang"] = "en";
  j["object_marking_refs"] =
      json::array({"marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
                   "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"});
  j["external_references"] =
      json::array({{{"source_name", "Sekoia.io"},
                    {"url", "https://app.sekoia.io/intelligence/objects/" + ind.id},
                    {"description", "Sekoia.io CTI object page"}},
                   {{"source_name", "partner-report"},
                    {"url", "https://reports.example/2024/intrusion-set-infrastructure"},
                    {"description", "Public report on the intrusion set's infrastructure"}}});
  j["x_inthreat_sources_refs"] = json::array({"identity--556006db-0d85-4ecb-8845-89d40ae0d40f",
                                              "identity--f7b2bfbb-5c48-44e3-bde2-7a4a3b1e6d45",
                                              "identity--c2f8b5f2-61b1-4e40-9d6f-3d0e0c7c8a10"});
  j["x_ic_is_in_flint"] = false;
  j["x_ic_deprecated"] = false;
  j["x_ic_impacted_sectors"] = json::array({"identity--0429e7a2-5a0a-4d4b-8a9c-3f2f5b1c9e11",
                                            "identity--8e1c1a7e-7b5f-4b0e-9c4e-1a2b3c4d5e6f"});
  j["x_ic_impacted_locations"] = json::array({"location--a678bd28-2f4d-4e5a-a4f3-0e6b7e0b4d7a",
                                              "location--5c1b4f8e-3b2d-4c8f-9e7a-6d5f4e3c2b1a"});
  j["x_inthreat_short_display"] = ind.value;
  return j;
}

// Query flags are true or false in any case ("True" is what Python clients send); anything
// else is a 400.
bool BoolParam(const httplib::Request& req, const char* name, bool fallback, bool* out) {
  if (!req.has_param(name)) {
    *out = fallback;
    return true;
  }
  std::string v = req.get_param_value(name);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v != "true" && v != "false") return false;
  *out = v == "true";
  return true;
}

// gzip (RFC 1952) at zlib level `level`; empty on failure.
std::string Gzip(const std::string& in, int level) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
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
void SetBody(httplib::Response& res, std::string body, const char* type, size_t cut,
             int dribble_ms = 0) {
  if (body.empty()) {  // httplib never completes a zero-length content provider
    res.set_content("", type);
    return;
  }
  auto shared = std::make_shared<std::string>(std::move(body));
  cut = std::min(cut, shared->size());
  // Dribbling: twenty slices, a pause before each, so the page takes about dribble_ms.
  const size_t slice = dribble_ms > 0 ? std::max<size_t>(1, (shared->size() + 19) / 20) : 0;
  res.set_content_provider(
      shared->size(), type,
      [shared, cut, slice, dribble_ms](size_t offset, size_t length, httplib::DataSink& sink) {
        if (slice > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(dribble_ms / 20));
          length = std::min(length, slice);
        }
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
      {"drop_cursor", &Fault::drop_cursor},
      {"blank_lines", &Fault::blank_lines},
      {"loop_cursor", &Fault::loop_cursor}};
  static const std::pair<const char*, int Fault::*> kInts[] = {
      {"status", &Fault::status},       {"slow_ms", &Fault::slow_ms},
      {"skip", &Fault::skip},           {"times", &Fault::times},
      {"cap_limit", &Fault::cap_limit}, {"dribble_ms", &Fault::dribble_ms}};
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
      } else if (key == "last_page_cursor") {
        f->last_page_cursor = value.get<bool>() ? 1 : 0;
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

// Long on purpose: the simulator's whole API (routes, authentication, paging, the faults it
// can inject) in one table, as the feed contract (docs/sekoia-api.md) lists it.
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
    const auto mono = std::chrono::steady_clock::now().time_since_epoch();
    return json{{"time", FormatTime(time(nullptr))},
                {"mono_us", std::chrono::duration_cast<std::chrono::microseconds>(mono).count()},
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
        if (WafBlocked()) {  // the WAF stands in front of everything, authentication included
          JsonError(res, options_.waf_status, "Request blocked by the WAF");
          log["waf_blocked"] = true;
          log["status"] = options_.waf_status;
          Log(std::move(log));
          return;
        }
        const std::optional<Fault> fault = TakeFault();
        if (fault) {
          log["fault"] = true;
          if (fault->slow_ms > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(fault->slow_ms));
          }
        }
        auto finish = [&](int status) {
          WafAnswer(status);
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
          const bool over = n > max_limit && options_.cap_over_max;
          if (v.empty() || *end != '\0' || n < 1 || (n > max_limit && !over)) {
            JsonError(res, 400, "limit must be 1.." + std::to_string(max_limit));
            return finish(400);
          }
          limit = over ? max_limit : n;
        }
        PageRequest page_req;
        // Silent caps: the page is shorter than asked without being the last.
        size_t served_limit = limit;
        if (options_.page_cap > 0) served_limit = std::min(served_limit, options_.page_cap);
        if (fault && fault->cap_limit > 0) {
          served_limit = std::min(served_limit, static_cast<size_t>(fault->cap_limit));
        }
        // Blank lines take the place of entries: as many lines as asked for, fewer entries.
        const bool blank_lines = fault && fault->blank_lines && format == "text";
        if (blank_lines && served_limit > 2) served_limit -= 2;
        if (served_limit != limit) log["served_limit"] = served_limit;
        page_req.limit = served_limit;
        page_req.now = Now();
        page_req.order_by_modified = options_.order_by_modified;
        page_req.serve_not_yet_valid = options_.serve_not_yet_valid;
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
          const std::optional<std::string> raw = DecodeOpaque(cursor_in);
          const auto state = raw ? DecodeCursor(*raw) : std::nullopt;
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
          std::string end_mode = options_.last_page_cursor;
          if (fault && fault->last_page_cursor >= 0) {
            end_mode = fault->last_page_cursor == 1 ? "always" : "never";
          }
          // By default text sends a cursor with every non-empty page (an empty page follows the
          // last) and JSON's next_cursor is null on the last page.
          bool more = format == "text" ? count > 0 : !page.at_end;
          if (end_mode == "always") more = true;  // never null, even on the empty page
          if (end_mode == "never") more = count > 0 && !page.at_end;
          if (more) {
            cursor_out = EncodeOpaque(EncodeCursor(page.next_offset, page_req.modified_after));
          }
          if (format == "text") {
            body.reserve(count * 16);
            size_t n = 0;
            for (const Indicator* ind : page.items) {
              if (blank_lines && n == 1) body += "\n";
              if (blank_lines && n == count / 2) body += " \t\r\n";
              body += ind->value;
              body += '\n';
              ++n;
            }
          } else {
            for (const Indicator* ind : page.items) {
              json item = IndicatorJson(*ind);
              items.push_back(options_.stix_items ? StixIndicatorJson(*ind, item) : item);
            }
          }
        }
        if (fault && fault->repeat_cursor)
          cursor_out = cursor_in.empty() ? EncodeOpaque(EncodeCursor(0)) : cursor_in;
        if (fault && fault->loop_cursor) {
          cursor_out = EncodeOpaque(EncodeCursor(0, page_req.modified_after));
        }
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
          std::string packed = Gzip(body, options_.gzip_level);
          if (!packed.empty()) {
            body.swap(packed);
            cut = body.size();
            res.set_header("Content-Encoding", "gzip");
            log["content_encoding"] = "gzip";
          }
        }
        if (fault && fault->dribble_ms > 0) log["dribble_ms"] = fault->dribble_ms;
        SetBody(res, std::move(body), type, cut, fault ? fault->dribble_ms : 0);
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
    std::lock_guard<std::mutex> waf_lock(waf_mu_);
    res.set_content(
        json{
            {"requests", requests_}, {"faults_queued", faults_.size()}, {"waf_blocks", waf_blocks_}}
            .dump(),
        "application/json");
  });
}

// Starts a block of a random length, as Sekoia's WAF does (waf_mu_ held).
void SimServer::BlockLocked(std::chrono::steady_clock::time_point now) {
  std::uniform_int_distribution<int> dist(
      options_.waf_block_min_ms, std::max(options_.waf_block_min_ms, options_.waf_block_max_ms));
  waf_blocked_until_ = now + std::chrono::milliseconds(dist(waf_rng_));
  waf_requests_.clear();
  waf_errors_.clear();
  ++waf_blocks_;
}

bool SimServer::WafBlocked() {
  if (!options_.waf) return false;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(waf_mu_);
  if (now < waf_blocked_until_) return true;
  waf_requests_.push_back(now);
  while (!waf_requests_.empty() && now - waf_requests_.front() >= std::chrono::seconds(1)) {
    waf_requests_.pop_front();
  }
  if (waf_requests_.size() <= static_cast<size_t>(options_.waf_rate)) return false;
  BlockLocked(now);
  return true;
}

void SimServer::WafAnswer(int status) {
  if (!options_.waf || status < 400) return;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(waf_mu_);
  waf_errors_.push_back(now);
  while (!waf_errors_.empty() &&
         now - waf_errors_.front() > std::chrono::milliseconds(options_.waf_window_ms)) {
    waf_errors_.pop_front();
  }
  if (waf_errors_.size() < static_cast<size_t>(std::max(options_.waf_errors, 1))) return;
  BlockLocked(now);
}

// Sekoia's cursors are opaque base64 tokens. Three leading bytes that encode as "+/+/" and a
// length that needs "==" padding make sure a client that forgets to URL-encode them fails
// (an unencoded '+' arrives as a space).
std::string SimServer::EncodeOpaque(const std::string& raw) const {
  if (!options_.base64_cursors) return raw;
  std::string bytes = "\xfb\xff\xbf" + raw;
  while (bytes.size() % 3 != 1) bytes += ' ';
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::optional<std::string> SimServer::DecodeOpaque(const std::string& cursor) const {
  if (!options_.base64_cursors) return cursor;
  if (cursor.size() % 4 != 0) return std::nullopt;
  std::string bytes = Base64Decode(cursor);
  if (bytes.size() < 4 || bytes.compare(0, 3, "\xfb\xff\xbf") != 0) return std::nullopt;
  bytes.erase(0, 3);
  while (!bytes.empty() && bytes.back() == ' ') bytes.pop_back();
  return bytes;
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
