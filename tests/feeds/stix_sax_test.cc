// ParseIndicatorPage reads a page as SAX events (no document tree): the cases where a streaming
// reader could differ from the tree parser it replaced, each held against what that parser
// (nlohmann::json::parse) makes of the same text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "feeds/list_body.h"
#include "feeds/stix.h"

namespace iocwall {
namespace {

constexpr int64_t kNow = 1715299200;  // 2024-05-10T00:00:00Z

struct Parsed {
  Status status = Status::Ok();
  IndicatorPage page;
  FetchResult r;
};

Parsed Parse(const std::string& body, bool keep_inactive = false) {
  Parsed p;
  IndicatorPageOptions o;
  o.now = kNow;
  o.keep_inactive = keep_inactive;
  p.status = ParseIndicatorPage(body, o, &p.page, &p.r);
  return p;
}

// head + n times c + tail, built by appending (GCC 12 warns falsely about "x" + std::string).
std::string Filled(std::string head, size_t n, char c, std::string_view tail) {
  head.append(n, c);
  head.append(tail);
  return head;
}

std::vector<std::string> Prefixes(const FetchResult& r) {
  std::vector<std::string> out;
  for (const Prefix& p : r.prefixes) out.push_back(p.ToString());
  return out;
}

TEST(StixSaxTest, FieldNamesInsideNestedObjectsAreNotTheItemsOwn) {
  // Every field the reader looks for, also inside kill_chain_phases, external_references and an
  // unknown object, before and after the item's own: only the item's own count.
  const std::string decoys =
      R"({"pattern": "[ipv4-addr:value = '6.6.6.6']", "id": "indicator--decoy",
          "revoked": true, "valid_until": "2000-01-01T00:00:00Z",
          "valid_from": "2000-01-01T00:00:00Z", "items": [1], "next_cursor": 5})";
  const std::string body = R"({"items": [
    {"kill_chain_phases": [)" +
                           decoys + R"(],
     "pattern": "[ipv4-addr:value = '198.51.100.7']", "id": "indicator--real",
     "external_references": [)" +
                           decoys + "," + decoys + R"(],
     "valid_until": "2024-06-01T00:00:00Z", "x_meta": {"deeper": )" +
                           decoys + R"(}},
    {"external_references": [)" +
                           decoys + R"(], "id": "indicator--no-pattern"}
  ], "meta": {"items": [)" +
                           decoys + R"(], "next_cursor": 7}, "next_cursor": "c2"})";
  const Parsed p = Parse(body, true);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.page.items, 2u);
  EXPECT_EQ(p.page.next_cursor, "c2");
  ASSERT_EQ(Prefixes(p.r), std::vector<std::string>{"198.51.100.7"});
  EXPECT_EQ(p.r.ids[0], "indicator--real");
  EXPECT_EQ(p.r.revoked[0], 0);
  EXPECT_EQ(p.r.valid_until[0], 1717200000);
  EXPECT_EQ(p.r.valid_from[0], 0);
  // A pattern found only in a nested object is no pattern: the item is rejected by its id.
  EXPECT_EQ(p.r.stats.rejected, 1u);
  ASSERT_EQ(p.r.stats.samples.size(), 1u);
  EXPECT_EQ(p.r.stats.samples[0].text, "indicator--no-pattern");
  EXPECT_EQ(p.r.stats.samples[0].reason, "no value in the indicator's pattern");
}

TEST(StixSaxTest, UnknownFieldsOfEveryShapeAreSkipped) {
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "[{\"a\":";
  deep += "null";
  for (int i = 0; i < 10000; ++i) deep += "}]";
  const std::string body = R"({"x_first": [[1, 2.5e3, -7], [], [[[]]]], "items": [
    {"confidence": 80, "score": -1.5e-3, "big": 18446744073709551615, "neg": -9223372036854775808,
     "lang": null, "x_ic_is_in_flint": false, "nested": [[{"a": [[]]}], {"b": {}}],
     "deep": )" + deep + R"(, "pattern": "[ipv6-addr:value = '2001:db8::1']", "empty": {}}
  ], "x_last": {"n": [true, false, null]}, "next_cursor": null})";
  const Parsed p = Parse(body);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_TRUE(p.page.last);
  EXPECT_EQ(Prefixes(p.r), std::vector<std::string>{"2001:db8::1"});
  EXPECT_EQ(p.r.stats.rejected, 0u);
}

TEST(StixSaxTest, ItemsThatAreNotObjectsAreQuotedAsTheTreeParserPrintedThem) {
  const std::vector<std::string> items = {
      R"([[1, [2, {"pattern": "[ipv4-addr:value = '1.2.3.4']"}]], [], {}])",
      R"([[[[]]], [[], []], {"a": {"b": [null, true, false]}}])",
      R"("a string with \"quotes\", a tab\t, \u00e9 and \u0001")",
      "1.50",
      "-0.0",
      "1e300",
      "18446744073709551615",
      "-42",
      "null",
      "true",
      Filled(R"([")", 300, 'x', R"(", 1])"),
      Filled("[", 200, '1', "]"),
      R"({"not": "an item, but an object: parsed, no pattern"})",
  };
  std::string body = R"({"items": [)";
  for (size_t i = 0; i < items.size(); ++i) body += (i ? ", " : "") + items[i];
  body += R"(], "next_cursor": "n"})";
  const Parsed p = Parse(body);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.page.items, items.size());
  EXPECT_TRUE(p.r.prefixes.empty()) << "a pattern inside a list is not an indicator";
  ASSERT_EQ(p.r.stats.samples.size(), items.size());
  for (size_t i = 0; i + 1 < items.size(); ++i) {
    const nlohmann::json tree = nlohmann::json::parse(items[i]);
    const std::string dump = tree.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    EXPECT_EQ(p.r.stats.samples[i].text, Excerpt(std::string_view(dump).substr(0, 120)))
        << items[i];
    EXPECT_EQ(p.r.stats.samples[i].reason, "not a JSON object");
    EXPECT_EQ(p.r.stats.samples[i].line_no, i + 1);
  }
  EXPECT_EQ(p.r.stats.samples.back().reason, "no value in the indicator's pattern");
}

TEST(StixSaxTest, ATruncatedPageAppendsNothingWhereverItIsCut) {
  const std::string body = R"({"items": [
    {"id": "indicator--1", "pattern": "[ipv4-addr:value = '192.0.2.1']"},
    {"id": "indicator--2", "pattern": "[domain-name:value = 'x.example']"},
    [1, 2], {"pattern": "[ipv4-addr:value = '192.0.2.3/24']"}
  ], "next_cursor": "abc"})";
  ASSERT_TRUE(Parse(body).status.ok());
  // A result that already holds an earlier page: a broken page must leave it exactly so.
  FetchResult earlier;
  IndicatorPage earlier_page;
  ASSERT_TRUE(ParseIndicatorPage(body, {}, &earlier_page, &earlier).ok());
  ASSERT_EQ(earlier.prefixes.size(), 2u);
  ASSERT_EQ(earlier.stats.samples.size(), 2u);
  for (size_t cut = 0; cut < body.size(); ++cut) {
    const std::string part = body.substr(0, cut);
    if (part.find_first_not_of(" \n") == std::string::npos && cut > 0) continue;
    FetchResult r = earlier;
    IndicatorPage page;
    const Status st = ParseIndicatorPage(part, IndicatorPageOptions{}, &page, &r);
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    EXPECT_NE(st.message().find("not valid JSON"), std::string::npos) << st.message();
    EXPECT_EQ(r.prefixes, earlier.prefixes) << "cut at " << cut;
    EXPECT_EQ(r.ids, earlier.ids);
    EXPECT_EQ(r.valid_until, earlier.valid_until);
    EXPECT_EQ(r.valid_from, earlier.valid_from);
    EXPECT_EQ(r.stats.lines, earlier.stats.lines);
    EXPECT_EQ(r.stats.rejected, earlier.stats.rejected);
    EXPECT_EQ(r.stats.samples.size(), earlier.stats.samples.size());
    EXPECT_EQ(r.stats.widened.size(), earlier.stats.widened.size());
  }
  // Trailing bytes after a whole page are no page either.
  FetchResult r = earlier;
  IndicatorPage page;
  EXPECT_FALSE(ParseIndicatorPage(body + " {}", {}, &page, &r).ok());
  EXPECT_EQ(r.prefixes.size(), earlier.prefixes.size());
}

TEST(StixSaxTest, ADuplicateKeysLastValueWinsAsInTheTreeParser) {
  const std::string body = R"({"items": [
    {"pattern": "[ipv4-addr:value = '192.0.2.1']", "pattern": "[ipv4-addr:value = '192.0.2.2']",
     "revoked": true, "revoked": false, "id": "indicator--a", "id": 5,
     "valid_until": "2024-06-01T00:00:00Z", "valid_until": null},
    {"pattern": "[ipv4-addr:value = '192.0.2.3']", "pattern": 5, "id": "indicator--b"},
    {"revoked": false, "pattern": "[ipv4-addr:value = '192.0.2.4']", "revoked": "TRUE"}
  ], "next_cursor": "first", "next_cursor": null})";
  Parsed p = Parse(body, true);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_TRUE(p.page.last);
  EXPECT_EQ(p.page.next_cursor, "");
  ASSERT_EQ(Prefixes(p.r), (std::vector<std::string>{"192.0.2.2", "192.0.2.4"}));
  EXPECT_EQ(p.r.ids[0], "") << "the last id is a number";
  EXPECT_EQ(p.r.valid_until[0], 0) << "the last valid_until is null";
  EXPECT_EQ(p.r.revoked, (std::vector<uint8_t>{0, 1}));
  EXPECT_EQ(p.r.stats.rejected, 1u) << "the last pattern of the second item is a number";
  EXPECT_EQ(p.r.stats.samples[0].text, "indicator--b");

  // A second "items" list replaces the first: what the first appended is taken back.
  const std::string twice = R"({"items": [{"pattern": "[ipv4-addr:value = '192.0.2.1']"}, 7],
    "next_cursor": "x", "items": [{"pattern": "[ipv4-addr:value = '192.0.2.9']"}],
    "next_cursor": "y"})";
  p = Parse(twice);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.page.items, 1u);
  EXPECT_EQ(p.page.next_cursor, "y");
  EXPECT_EQ(Prefixes(p.r), std::vector<std::string>{"192.0.2.9"});
  EXPECT_EQ(p.r.stats.lines, 1u);
  EXPECT_EQ(p.r.stats.rejected, 0u);
  EXPECT_EQ(nlohmann::json::parse(twice)["items"].size(), p.page.items);

  // ... also when the last one is no list at all: then there is no "items" list.
  p = Parse(R"({"items": [{"pattern": "[ipv4-addr:value = '192.0.2.1']"}], "items": {}})");
  EXPECT_FALSE(p.status.ok());
  EXPECT_NE(p.status.message().find("no \"items\" list"), std::string::npos);
  EXPECT_TRUE(p.r.prefixes.empty());
  EXPECT_EQ(p.r.stats.lines, 0u);
  // And a cursor made valid again by its last value is valid.
  p = Parse(R"({"items": [], "next_cursor": 42, "next_cursor": "z"})");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.page.next_cursor, "z");
  p = Parse(R"({"items": [], "next_cursor": "z", "next_cursor": [1]})");
  EXPECT_FALSE(p.status.ok());
}

TEST(StixSaxTest, HugeStringsAreReadAndOnlyWhatIsKeptIsKept) {
  const std::string huge(16u << 20, 'd');
  const std::string long_id = "indicator--" + std::string(300, 'a');
  const std::string body = R"({"items": [
    {"description": ")" + huge +
                           R"(", "id": ")" + long_id + R"(",
     "pattern": "[ipv4-addr:value = '203.0.113.5']", ")" +
                           std::string(1u << 20, 'k') +
                           R"(": 1},
    ")" + huge + R"(",
    {"pattern": ")" + std::string(1u << 20, ' ') +
                           R"([ipv4-addr:value = '203.0.113.6']"}
  ], "next_cursor": ")" + std::string(4096, 'c') +
                           R"("})";
  const Parsed p = Parse(body);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(Prefixes(p.r), (std::vector<std::string>{"203.0.113.5", "203.0.113.6"}));
  EXPECT_EQ(p.r.ids[0], "") << "an id over 200 bytes is dropped";
  EXPECT_EQ(p.page.next_cursor.size(), 4096u);
  ASSERT_EQ(p.r.stats.samples.size(), 1u);
  EXPECT_EQ(p.r.stats.samples[0].text, Excerpt(Filled("\"", 119, 'd', "")));
  EXPECT_LE(p.r.stats.samples[0].text.size(), 160u);
}

TEST(StixSaxTest, SamplesStopAtTheCapButCountingGoesOn) {
  std::string body = R"({"items": [)";
  for (int i = 0; i < 100; ++i) body += (i ? "," : "") + std::string(R"([1, {"a": [2]}])");
  body += R"(, {"pattern": "[ipv4-addr:value = '192.0.2.1']"}]})";
  const Parsed p = Parse(body);
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.page.items, 101u);
  EXPECT_EQ(p.r.stats.rejected, 100u);
  EXPECT_EQ(p.r.stats.samples.size(), ParseStats::kMaxSamples);
  EXPECT_EQ(p.r.stats.samples[19].text, R"([1,{"a":[2]}])");
  EXPECT_EQ(p.r.stats.lines, 101u);
  EXPECT_EQ(Prefixes(p.r), std::vector<std::string>{"192.0.2.1"});
}

}  // namespace
}  // namespace iocwall
