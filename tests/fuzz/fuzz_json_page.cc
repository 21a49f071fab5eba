// libFuzzer target: the format=json page path of the feed client, ParseIndicatorPage
// (feeds/stix.h), the very function SekoiaSource hands each page to, in both of its modes: a
// full snapshot (revoked and expired indicators left out) and a changes fetch (kept, flagged).
// The raw bytes also go to the STIX helpers directly, as a pattern and as a timestamp.
//
// Invariants: a refused page appends nothing; on an accepted one the result's vectors stay
// parallel, every prefix is canonical (it prints and re-parses to itself), every id is printable
// ASCII without spaces (ids reach logs and state files), rejected samples are printable, the
// item count is the "items" list's, a full snapshot holds nothing revoked or expired, and the
// snapshot is exactly the changes view minus its revoked and expired entries. The changes view
// is also held entry by entry against nlohmann's tree parser, which ParseIndicatorPage used
// before it read pages as SAX events (nested same-name keys, duplicate keys). What
// ParseRfc3339 accepts prints back (FormatRfc3339) to the same second.
#include <cctype>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "feeds/stix.h"
#include "tests/fuzz/fuzz_invariants.h"

namespace {

using iocwall::FetchResult;
using iocwall::FuzzCheck;

constexpr int64_t kNow = 1715299200;  // 2024-05-10T00:00:00Z, inside the seeds' validity windows

bool Printable(std::string_view s, bool spaces) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x7f || u < 0x20 || (u == 0x20 && !spaces)) return false;
  }
  return true;
}

void CheckTime(std::string_view text) {
  const std::optional<int64_t> t = iocwall::ParseRfc3339(text);
  if (!t) return;
  const std::optional<int64_t> again = iocwall::ParseRfc3339(iocwall::FormatRfc3339(*t));
  FuzzCheck(again.has_value(), "FormatRfc3339 output parses");
  FuzzCheck(*again == *t, "RFC 3339 round trip");
}

void CheckPattern(std::string_view pattern) {
  const auto values = iocwall::ParseStixPattern(pattern);
  if (!values) return;
  FuzzCheck(!values->empty(), "a parsed pattern holds a value");
  for (const auto& v : *values) {
    FuzzCheck(!v.type.empty(), "pattern value has a type");
    FuzzCheck(v.value.size() <= pattern.size(), "value is inside the pattern");
  }
}

// Parses the page in one mode and checks what holds whatever the input.
bool ParseChecked(std::string_view raw, bool keep_inactive, size_t items_in_doc,
                  iocwall::IndicatorPage* page, FetchResult* r) {
  iocwall::IndicatorPageOptions options;
  options.now = kNow;
  options.keep_inactive = keep_inactive;
  const iocwall::Status st = iocwall::ParseIndicatorPage(raw, options, page, r);
  if (!st.ok()) {
    FuzzCheck(!st.message().empty(), "a refusal says why");
    FuzzCheck(r->prefixes.empty() && r->stats.lines == 0, "a refused page appends nothing");
    return false;
  }
  const size_t n = r->prefixes.size();
  FuzzCheck(page->items == items_in_doc, "item count is the items list's size");
  FuzzCheck(page->next_cursor.size() <= raw.size(), "cursor within the page");
  FuzzCheck(r->valid_until.size() == n && r->valid_from.size() == n && r->ids.size() == n,
            "parallel vectors");
  FuzzCheck(r->revoked.size() == (keep_inactive ? n : 0), "revoked flags only for changes");
  FuzzCheck(r->stats.accepted == n, "accepted count");
  FuzzCheck(r->stats.samples.size() <= r->stats.rejected, "no more samples than rejects");
  FuzzCheck(r->stats.samples.size() <= iocwall::ParseStats::kMaxSamples, "samples capped");
  for (const auto& s : r->stats.samples) {
    FuzzCheck(s.text.size() <= 160 && Printable(s.text, true), "sample printable");
  }
  for (size_t i = 0; i < n; ++i) {
    iocwall::CheckAcceptedPrefix(r->prefixes[i]);
    FuzzCheck(r->ids[i].size() <= 200 && Printable(r->ids[i], false), "id printable");
    if (keep_inactive) {
      FuzzCheck(r->revoked[i] <= 1, "revoked is a flag");
    } else {
      FuzzCheck(r->valid_until[i] == 0 || r->valid_until[i] > kNow, "snapshot holds no expired");
    }
  }
  return true;
}

// What the page holds by nlohmann's tree parser, the reading ParseIndicatorPage replaced with
// SAX events: each entry of a changes fetch (nothing filtered) as the tree says it, in order.
struct TreeEntry {
  iocwall::Prefix prefix;
  std::string id;
  int64_t valid_until = 0, valid_from = 0;
  uint8_t revoked = 0;
};

std::string TreeString(const nlohmann::json& item, const char* key) {
  const auto it = item.find(key);
  return it != item.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<TreeEntry> TreeEntries(const nlohmann::json& items, size_t* rejected) {
  std::vector<TreeEntry> out;
  for (const auto& item : items) {
    if (!item.is_object()) {
      ++*rejected;
      continue;
    }
    TreeEntry e;
    const auto rv = item.find("revoked");
    std::string flag = rv != item.end() && rv->is_string() ? rv->get<std::string>() : "";
    for (char& c : flag) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    e.revoked = rv != item.end() && (rv->is_boolean() ? rv->get<bool>() : flag == "true");
    e.valid_until = iocwall::ParseRfc3339(TreeString(item, "valid_until")).value_or(0);
    e.valid_from = iocwall::ParseRfc3339(TreeString(item, "valid_from")).value_or(0);
    e.id = TreeString(item, "id");
    if (e.id.size() > 200 || !Printable(e.id, false)) e.id.clear();
    const auto values = iocwall::ParseStixPattern(TreeString(item, "pattern"));
    if (!values) {
      ++*rejected;
      continue;
    }
    for (const auto& v : *values) {
      const iocwall::ParsedLine line = iocwall::ParseLine(v.value);
      if ((v.type != "ipv4-addr" && v.type != "ipv6-addr") ||
          line.kind != iocwall::LineKind::kAccepted) {
        ++*rejected;
        continue;
      }
      e.prefix = line.prefix;
      out.push_back(e);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  CheckPattern(raw);
  CheckTime(raw);

  // An independent count of the items, to hold the parser's against.
  size_t items_in_doc = 0;
  size_t tree_rejected = 0;
  std::vector<TreeEntry> tree;
  bool tree_page = false;
  const nlohmann::json doc = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) {
    if (const auto items = doc.find("items"); items != doc.end() && items->is_array()) {
      items_in_doc = items->size();
      const auto nc = doc.find("next_cursor");
      tree_page = nc == doc.end() || nc->is_string() || nc->is_null();
      tree = TreeEntries(*items, &tree_rejected);
      for (const auto& item : *items) {
        if (!item.is_object()) continue;
        if (const auto vu = item.find("valid_until"); vu != item.end() && vu->is_string()) {
          CheckTime(vu->get<std::string>());
        }
        if (const auto p = item.find("pattern"); p != item.end() && p->is_string()) {
          CheckPattern(p->get<std::string>());
        }
      }
    }
  }

  iocwall::IndicatorPage full_page, changes_page;
  FetchResult full, changes;
  const bool full_ok = ParseChecked(raw, false, items_in_doc, &full_page, &full);
  const bool changes_ok = ParseChecked(raw, true, items_in_doc, &changes_page, &changes);
  FuzzCheck(full_ok == changes_ok, "both modes accept the same pages");
  FuzzCheck(full_ok == tree_page, "the pages the tree parser accepts, and no other");
  if (!full_ok) return 0;
  // The changes view, entry by entry, is what the tree parser reads in the page.
  FuzzCheck(changes.prefixes.size() == tree.size(), "as many entries as the tree holds");
  FuzzCheck(changes.stats.rejected == tree_rejected, "as many rejected as the tree holds");
  for (size_t i = 0; i < tree.size() && i < changes.prefixes.size(); ++i) {
    FuzzCheck(changes.prefixes[i] == tree[i].prefix, "tree: same prefix");
    FuzzCheck(changes.ids[i] == tree[i].id, "tree: same id");
    FuzzCheck(changes.valid_until[i] == tree[i].valid_until, "tree: same valid_until");
    FuzzCheck(changes.valid_from[i] == tree[i].valid_from, "tree: same valid_from");
    FuzzCheck(changes.revoked[i] == tree[i].revoked, "tree: same revocation");
  }
  FuzzCheck(full_page.next_cursor == changes_page.next_cursor, "same cursor in both modes");
  FuzzCheck(full_page.last == changes_page.last, "same end in both modes");
  FuzzCheck(!full_page.last || full_page.next_cursor.empty(), "a last page has no cursor");
  // The snapshot is the changes view without what is revoked or expired, in the same order.
  size_t j = 0;
  for (size_t i = 0; i < changes.prefixes.size(); ++i) {
    const bool expired = changes.valid_until[i] != 0 && changes.valid_until[i] <= kNow;
    if (changes.revoked[i] != 0 || expired) continue;
    FuzzCheck(j < full.prefixes.size(), "snapshot misses an entry in force");
    FuzzCheck(full.prefixes[j] == changes.prefixes[i], "same prefix");
    FuzzCheck(full.valid_until[j] == changes.valid_until[i], "same validity");
    FuzzCheck(full.ids[j] == changes.ids[i], "same id");
    ++j;
  }
  FuzzCheck(j == full.prefixes.size(), "snapshot holds nothing more than the entries in force");
  return 0;
}
