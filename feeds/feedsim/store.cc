#include "feeds/feedsim/store.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "feeds/feedsim/sim_time.h"

namespace iocwall::feedsim {

namespace {

constexpr uint64_t kCursorKey = 0x9e3779b97f4a7c15ull;
constexpr uint64_t kCursorTimeKey = 0xc2b2ae3d27d4eb4full;

uint64_t CursorCheck(size_t offset, std::optional<int64_t> modified_after) {
  uint64_t mix = offset * kCursorKey;
  if (modified_after) mix ^= static_cast<uint64_t>(*modified_after) * kCursorTimeKey;
  return mix >> 40;
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool ValidAddress(int af, const std::string& text) {
  unsigned char buf[16];
  return inet_pton(af, text.c_str(), buf) == 1;
}

// "a.b.c.d" or "a.b.c.d/n" (n <= 32); the same for IPv6 with n <= 128.
bool ValidIp(int af, const std::string& value) {
  const size_t slash = value.find('/');
  if (slash == std::string::npos) return ValidAddress(af, value);
  const std::string len = value.substr(slash + 1);
  if (len.empty() || len.size() > 3) return false;
  for (char c : len) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return std::stoi(len) <= (af == AF_INET ? 32 : 128) && ValidAddress(af, value.substr(0, slash));
}

}  // namespace

std::string ObservableType(const std::string& value) {
  if (ValidIp(AF_INET, value)) return "ipv4-addr";
  if (ValidIp(AF_INET6, value)) return "ipv6-addr";
  const bool domain_like =
      !value.empty() && value.find('.') != std::string::npos &&
      value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
          std::string::npos;
  return domain_like ? "domain-name" : "unknown";
}

std::string IndicatorId(const std::string& value) {
  const uint64_t a = Fnv1a(value);
  const uint64_t b = Fnv1a(value + "#");
  char buf[64];
  snprintf(buf, sizeof buf, "indicator--%08x-%04x-4%03x-8%03x-%012llx",
           static_cast<unsigned>(a >> 32), static_cast<unsigned>((a >> 16) & 0xffff),
           static_cast<unsigned>(a & 0xfff), static_cast<unsigned>((b >> 48) & 0xfff),
           static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

std::string EncodeCursor(size_t offset, std::optional<int64_t> modified_after) {
  char buf[96];
  const unsigned long long check = CursorCheck(offset, modified_after);
  if (modified_after) {
    snprintf(buf, sizeof buf, "c2.%zx.%llx.%llx", offset,
             static_cast<unsigned long long>(*modified_after), check);
  } else {
    snprintf(buf, sizeof buf, "c1.%zx.%llx", offset, check);
  }
  return buf;
}

std::optional<CursorState> DecodeCursor(const std::string& cursor) {
  CursorState state;
  unsigned long long check = 0;
  unsigned long long time = 0;
  int used = 0;
  auto whole = [&](int fields, int want) {
    return fields == want && static_cast<size_t>(used) == cursor.size();
  };
  if (cursor.rfind("c2.", 0) == 0) {
    if (!whole(sscanf(cursor.c_str(), "c2.%zx.%llx.%llx%n", &state.offset, &time, &check, &used),
               3)) {
      return std::nullopt;
    }
    state.modified_after = static_cast<int64_t>(time);
  } else if (!whole(sscanf(cursor.c_str(), "c1.%zx.%llx%n", &state.offset, &check, &used), 2)) {
    return std::nullopt;
  }
  if (check != CursorCheck(state.offset, state.modified_after)) return std::nullopt;
  return state;
}

void Store::Put(Collection* c, Indicator ind) {
  const auto it = c->by_value.find(ind.value);
  if (it != c->by_value.end()) {
    Indicator& old = c->items[it->second];
    old.valid_until = ind.valid_until;
    old.modified = ind.modified;
    return;
  }
  if (ind.id.empty()) ind.id = IndicatorId(ind.value);
  if (ind.type.empty()) ind.type = ObservableType(ind.value);
  c->by_value.emplace(ind.value, c->items.size());
  c->items.push_back(std::move(ind));
}

bool Store::LoadFile(const std::string& id, const std::string& path, int64_t now, int valid_days,
                     std::string* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = "cannot read " + path;
    return false;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  Collection& c = collections_[id];
  const bool json = path.size() > 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  if (json) {
    const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_array()) {
      *err = path + ": not a JSON array of indicators";
      return false;
    }
    for (const auto& j : doc) {
      if (!j.is_object() || !j.contains("value") || !j["value"].is_string()) {
        *err = path + ": every indicator needs a \"value\" string";
        return false;
      }
      Indicator ind;
      ind.value = j["value"].get<std::string>();
      ind.id = j.value("id", std::string());
      ind.revoked = j.value("revoked", false);
      ind.pattern = j.value("pattern", std::string());
      ind.valid_from = now;
      ind.valid_until = now + int64_t{valid_days} * 86400;
      ind.modified = now;
      for (const auto& [key, field] :
           {std::pair{"valid_from", &ind.valid_from}, std::pair{"valid_until", &ind.valid_until},
            std::pair{"modified", &ind.modified}}) {
        if (!j.contains(key)) continue;
        if (j[key].is_null()) {
          *field = 0;
        } else if (auto t = ParseTime(j[key].is_string() ? j[key].get<std::string>() : "")) {
          *field = *t;
        } else {
          *err = path + ": " + key + " of " + ind.value + " is not an RFC 3339 time";
          return false;
        }
      }
      Put(&c, std::move(ind));
    }
    return true;
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    Indicator ind;
    ind.value = line;
    ind.valid_from = now;
    ind.valid_until = now + int64_t{valid_days} * 86400;
    ind.modified = now;
    Put(&c, std::move(ind));
  }
  return true;
}

void Store::Generate(const std::string& id, size_t n, bool mix_v6, int64_t now, int valid_days) {
  Collection& c = collections_[id];
  c.items.reserve(c.items.size() + n);
  c.by_value.reserve(c.by_value.size() + n);
  const uint32_t base = 11u << 24;
  for (size_t i = 0; i < n; ++i) {
    Indicator ind;
    char buf[64];
    if (mix_v6 && i % 10 == 9) {
      snprintf(buf, sizeof buf, "2001:db8:%x:%x::1", static_cast<unsigned>(i >> 16),
               static_cast<unsigned>(i & 0xffff));
      ind.type = "ipv6-addr";
    } else {
      const uint32_t a = base + static_cast<uint32_t>(i);
      snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
      ind.type = "ipv4-addr";
    }
    ind.value = buf;
    ind.valid_from = now;
    ind.valid_until = now + int64_t{valid_days} * 86400;
    ind.modified = now;
    Put(&c, std::move(ind));
  }
}

Page Store::Scan(const std::string& id, const PageRequest& req) const {
  Page page;
  const auto it = collections_.find(id);
  if (it == collections_.end()) return page;
  const std::vector<Indicator>& items = it->second.items;
  // Sekoia sorts by modification time; re-sorted per page, which is fine at test sizes.
  std::vector<size_t> order;
  if (req.order_by_modified) {
    order.resize(items.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return items[a].modified < items[b].modified; });
  }
  size_t i = std::min(req.offset, items.size());
  for (; i < items.size() && page.items.size() < req.limit; ++i) {
    const Indicator& ind = req.order_by_modified ? items[order[i]] : items[i];
    if (ind.revoked && !req.include_revoked) continue;
    if (req.skip_expired && ind.valid_until != 0 && ind.valid_until <= req.now) continue;
    if (ind.valid_from > req.now && !req.serve_not_yet_valid) continue;  // not valid yet
    if (req.modified_after && ind.modified <= *req.modified_after) continue;
    page.items.push_back(&ind);
  }
  page.next_offset = i;
  page.at_end = i >= items.size();
  return page;
}

AddOutcome Store::Add(const std::string& id, const std::vector<std::string>& values,
                      const std::string& type, int64_t now, int64_t valid_until) {
  AddOutcome out;
  Collection& c = collections_[id];
  for (const std::string& v : values) {
    if (v.empty()) continue;
    if (ObservableType(v) != type) {
      ++out.ignored;
      continue;
    }
    if (c.by_value.count(v) != 0) {
      ++out.updated;
    } else {
      ++out.created;
    }
    Indicator ind;
    ind.value = v;
    ind.type = type;
    ind.valid_from = now;
    ind.valid_until = valid_until;
    ind.modified = now;
    Put(&c, std::move(ind));
  }
  return out;
}

size_t Store::Revoke(const std::string& id, const std::vector<std::string>& values, int64_t now) {
  const auto it = collections_.find(id);
  if (it == collections_.end()) return 0;
  size_t n = 0;
  for (const std::string& v : values) {
    const auto found = it->second.by_value.find(v);
    if (found == it->second.by_value.end()) continue;
    Indicator& ind = it->second.items[found->second];
    if (ind.revoked) continue;  // final, as in Sekoia: revoking again changes nothing
    ++n;
    ind.revoked = true;
    ind.modified = now;
  }
  return n;
}

size_t Store::Size(const std::string& id) const {
  const auto it = collections_.find(id);
  return it == collections_.end() ? 0 : it->second.items.size();
}

}  // namespace iocwall::feedsim
