#include "agent/applied_state.h"

#include <cstring>
#include <sstream>

#include "core/timed.h"

namespace iocwall {
namespace {

constexpr char kMagic[] = "iocwall-applied 1";

size_t KeyBytes(Family f) { return f == Family::kV4 ? 4 : 16; }

void PutKey(std::string* out, Family f, u128 v) {
  for (size_t i = 0; i < KeyBytes(f); ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

u128 GetKey(const char* p, Family f) {
  u128 v = 0;
  for (size_t i = KeyBytes(f); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void PutI64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(u >> (8 * i)));
}

int64_t GetI64(const char* p) {
  uint64_t u = 0;
  for (int i = 8; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<int64_t>(u);
}

bool Printable(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

std::string SerializeApplied(const AppliedCopy& c) {
  std::ostringstream h;
  h << kMagic << "\n"
    << "table " << c.table << "\n"
    << "spec " << c.spec << "\n"
    << "generation " << c.generation << "\n"
    << "handle " << c.table_handle << "\n"
    << "boot " << c.boot_id << "\n"
    << "netns " << c.netns << "\n"
    << "full_read_at " << c.full_read_at << "\n"
    << "timeouts " << (c.timeouts ? 1 : 0) << "\n"
    << "v4 " << c.v4.ranges.size() << "\n"
    << "v6 " << c.v6.ranges.size() << "\n"
    << "\n";
  std::string out = h.str();
  for (Family f : {Family::kV4, Family::kV6}) {
    const FamilyRanges& fr = c.of(f);
    out.reserve(out.size() + fr.ranges.size() * (2 * KeyBytes(f) + 8));
    for (size_t i = 0; i < fr.ranges.size(); ++i) {
      PutKey(&out, f, fr.ranges[i].first);
      PutKey(&out, f, fr.ranges[i].last);
      PutI64(&out, i < fr.expires.size() ? fr.expires[i] : kNeverExpires);
    }
  }
  return out;
}

Result<AppliedCopy> ParseApplied(const std::string& data) {
  const size_t end = data.find("\n\n");
  if (end == std::string::npos) return Status::Error("no header");
  std::istringstream h(data.substr(0, end + 1));
  std::string line;
  if (!std::getline(h, line) || line != kMagic) return Status::Error("not an applied-state file");
  AppliedCopy c;
  size_t n4 = 0, n6 = 0;
  int timeouts = 0;
  const char* keys[] = {"table", "spec",         "generation", "handle", "boot",
                        "netns", "full_read_at", "timeouts",   "v4",     "v6"};
  for (const char* key : keys) {
    if (!std::getline(h, line)) return Status::Error(std::string("missing ") + key);
    const std::string prefix = std::string(key) + " ";
    if (line.rfind(prefix, 0) != 0) return Status::Error(std::string("expected ") + key);
    std::string v = line.substr(prefix.size());
    std::istringstream in(v);
    bool ok = true;
    if (prefix == "table ") {
      c.table = v;
      ok = !v.empty() && Printable(v);
    } else if (prefix == "spec ") {
      c.spec = v;
    } else if (prefix == "boot ") {
      c.boot_id = v;
      ok = Printable(v);
    } else if (prefix == "generation ") {
      ok = static_cast<bool>(in >> c.generation);
    } else if (prefix == "handle ") {
      ok = static_cast<bool>(in >> c.table_handle);
    } else if (prefix == "netns ") {
      ok = static_cast<bool>(in >> c.netns);
    } else if (prefix == "full_read_at ") {
      ok = static_cast<bool>(in >> c.full_read_at);
    } else if (prefix == "timeouts ") {
      ok = static_cast<bool>(in >> timeouts) && (timeouts == 0 || timeouts == 1);
    } else if (prefix == "v4 ") {
      ok = static_cast<bool>(in >> n4);
    } else {
      ok = static_cast<bool>(in >> n6);
    }
    if (!ok) return Status::Error(std::string("bad ") + key);
  }
  c.timeouts = timeouts == 1;
  const size_t body = data.size() - (end + 2);
  const size_t rec4 = 2 * 4 + 8, rec6 = 2 * 16 + 8;
  // Sizes are checked before anything is reserved: a header claiming a billion ranges in a
  // small file allocates nothing.
  if (n4 > body / rec4 || n6 > body / rec6 || n4 * rec4 + n6 * rec6 != body) {
    return Status::Error("the ranges do not match the counts");
  }
  const char* p = data.data() + end + 2;
  for (Family f : {Family::kV4, Family::kV6}) {
    const size_t n = f == Family::kV4 ? n4 : n6;
    FamilyRanges& fr = c.of(f);
    fr.ranges.reserve(n);
    if (c.timeouts) fr.expires.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Range r{GetKey(p, f), GetKey(p + KeyBytes(f), f)};
      int64_t exp = GetI64(p + 2 * KeyBytes(f));
      p += 2 * KeyBytes(f) + 8;
      // Sorted, disjoint, non-adjacent-or-adjacent but never overlapping: as committed.
      if (r.last < r.first || (!fr.ranges.empty() && r.first <= fr.ranges.back().last)) {
        return Status::Error("ranges out of order");
      }
      fr.ranges.push_back(r);
      if (c.timeouts) fr.expires.push_back(exp);
    }
  }
  return c;
}

}  // namespace iocwall
