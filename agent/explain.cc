#include "agent/explain.h"

#include <sstream>

#include "agent/health.h"
#include "core/interval_set.h"

namespace iocwall {
namespace {

bool Covers(const Prefix& p, const Prefix& address) {
  return p.family == address.family && p.First() <= address.addr && address.addr <= p.Last();
}

// What protects the address whatever lists it, as (refusal, operator line) pairs.
std::vector<std::pair<Refusal, std::string>> Protections(const Config& c, const ExplainInput& in) {
  std::vector<std::pair<Refusal, std::string>> out;
  const Prefix& ip = in.address;
  IntervalSet prot = ProtectedRanges();
  long pi = Find(prot.of(ip.family), ip.addr);
  if (pi >= 0) {
    out.push_back(
        {Refusal::kAlwaysProtected, "inside the always-protected range " +
                                        FormatRange(ip.family, prot.of(ip.family).ranges[pi])});
  }
  for (const auto& p : c.allowlist) {
    if (Covers(p, ip)) {
      out.push_back({Refusal::kAllowlisted, "allowlisted by [allowlist] prefix " + p.ToString()});
    }
  }
  for (const auto& h : in.host) {
    if (Covers(h.prefix, ip)) out.push_back({Refusal::kHost, h.why});
  }
  return out;
}

// Why the last good list does not put `e` in force for the address: the entry's own refusals
// (the cycle drops it whole), then the address's protections (carved out of it).
void Judge(const Config& c, int64_t now,
           const std::vector<std::pair<Refusal, std::string>>& protections, ExplainListing* l) {
  const SnapshotEntry& e = l->entry;
  if (e.valid_until != 0 && e.valid_until <= now) {
    l->refusals.push_back(Refusal::kExpired);
    l->why.push_back("refused: expired at " + IsoTime(e.valid_until) + " (" +
                     Age(e.valid_until, now) + ")");
  }
  if (e.valid_from > now) {
    l->refusals.push_back(Refusal::kNotYetValid);
    l->why.push_back("refused until " + IsoTime(e.valid_from) +
                     ": not valid yet (its valid_from); the daemon blocks it then");
  }
  const bool v4 = e.prefix.family == Family::kV4;
  const int min_len = v4 ? c.sync.min_prefix_v4 : c.sync.min_prefix_v6;
  if (e.prefix.len < min_len) {
    l->refusals.push_back(Refusal::kTooShort);
    l->why.push_back("refused: /" + std::to_string(e.prefix.len) +
                     " is shorter than [sync] min_prefix_v" + (v4 ? "4" : "6") + " = " +
                     std::to_string(min_len) + " (too wide to block)");
  }
  for (const auto& [refusal, why] : protections) {
    l->refusals.push_back(refusal);
    l->why.push_back("not blocked here: " + why);
  }
}

std::string ListingLine(const ExplainListing& l, int64_t now) {
  const SnapshotEntry& e = l.entry;
  std::ostringstream out;
  out << "  listed by " << l.source << " as " << e.prefix.ToString()
      << (e.id.empty() ? "" : " (indicator " + e.id + ")") << ", since " << IsoTime(e.first_seen)
      << " (" << Age(e.first_seen, now) << ")";
  if (e.valid_until) {
    out << (e.valid_until <= now ? ", EXPIRED at " : ", valid until ") << IsoTime(e.valid_until);
  }
  out << "\n";
  if (l.feed) {
    out << "    the feed wrote \"" << l.feed->text << "\" (line " << l.feed->line_no
        << "; host bits set: taken as " << e.prefix.ToString() << ")\n";
  }
  for (const auto& w : l.why) out << "    " << w << "\n";
  return out.str();
}

// The kernel's answer: one lookup for the address, then (blocked) the element's end by
// bisection, one lookup per bit at most (32 for IPv4), still no dump.
std::string KernelLine(const Config& c, const Prefix& ip, SetBackend& kernel, bool* blocked) {
  *blocked = false;
  KernelStatus k;
  Status s = kernel.ReadStatus(&k);
  const std::string table = "table inet " + c.nft.table;
  if (!s.ok()) return "  kernel: cannot read: " + s.message() + "\n";
  if (!k.table_present) return "  kernel: " + table + " is absent: NOT blocked\n";
  if (!k.table_owned) {
    return "  kernel: " + table + " was not created by iocwall: NOT blocked by iocwall\n";
  }
  if (k.table_dormant) {
    return "  kernel: " + table + " is dormant (its chains see no packet): NOT blocked\n";
  }
  if (!k.sets_present || !k.chains_present) {
    return "  kernel: " + table + " lacks a set, chain or rule: NOT blocked\n";
  }
  std::vector<std::optional<u128>> start;
  const u128 one[1] = {ip.addr};
  s = kernel.Lookup(ip.family, one, &start);
  const std::string& set = ip.family == Family::kV4 ? c.nft.set_v4 : c.nft.set_v6;
  if (!s.ok()) return "  kernel: cannot look it up: " + s.message() + "\n";
  if (!start[0]) return "  kernel: not blocked (no element of set " + set + " covers it)\n";
  *blocked = true;
  u128 lo = ip.addr, hi = ip.family == Family::kV4 ? u128{0xffffffff} : ~u128{0};
  while (lo < hi) {
    u128 mid = lo + (hi - lo) / 2 + 1;
    const u128 probe[1] = {mid};
    std::vector<std::optional<u128>> got;
    if (!kernel.Lookup(ip.family, probe, &got).ok()) break;
    if (got[0] == start[0]) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return "  kernel: BLOCKED by element " + FormatRange(ip.family, Range{*start[0], lo}) +
         " of set " + set + "\n";
}

}  // namespace

Result<Prefix> ParseExplainAddress(const std::string& text) {
  auto ip = ParsePrefix(text);
  if (!ip || ip->len != AddressBits(ip->family)) {
    return Status::Error("--explain takes one IP address, got '" + text + "'");
  }
  return *ip;
}

ExplainResult Explain(const Config& c, const ExplainInput& in, SetBackend& kernel) {
  ExplainResult r;
  const Prefix& ip = in.address;
  std::string text = ip.ToString() + ":\n";
  const auto protections = Protections(c, in);
  for (const auto& [refusal, why] : protections) text += "  never blocked: " + why + "\n";
  r.protected_address = !protections.empty();
  // Which sources list it, from the last good lists (what is enforced), and why an entry that
  // lists it does not block it: the feed's line may be refused while the address looks listed.
  for (const auto& src : in.sources) {
    if (!src.snapshot.ok()) {
      text += "  " + src.name + ": " + src.snapshot.message() + "\n";
      continue;
    }
    if (!src.snapshot.value()) continue;
    for (const auto& e : (*src.snapshot.value()).entries) {
      if (!Covers(e.prefix, ip)) continue;
      ExplainListing l;
      l.source = src.name;
      l.entry = e;
      for (const auto& w : src.widened) {
        if (w.prefix == e.prefix) l.feed = w;
      }
      Judge(c, in.now, protections, &l);
      text += ListingLine(l, in.now);
      r.listings.push_back(std::move(l));
    }
  }
  if (r.listings.empty()) text += "  not listed by any source's last good list\n";
  text += KernelLine(c, ip, kernel, &r.blocked);
  if (r.blocked && r.protected_address) {
    // Only a hand-made element can do that: iocwall subtracts protected addresses before
    // every apply, and its next cycle repairs the drift.
    text +=
        "  WARNING: the kernel blocks an address iocwall never blocks: an element was "
        "added by hand; the next cycle removes it\n";
  }
  r.text = std::move(text);
  return r;
}

}  // namespace iocwall
