// The pure parts of the feed layer: STIX patterns and times, the secret file, body shape
// checks, error classification, local list files.
#include <gtest/gtest.h>

#include "feeds/file_source.h"
#include "feeds/http_errors.h"
#include "feeds/list_body.h"
#include "feeds/secret_file.h"
#include "feeds/sekoia_source.h"
#include "feeds/stix.h"
#include "tests/feeds/sim_fixture.h"

namespace iocwall {
namespace {

using testing::TempDir;

TEST(StixTest, ExtractsIpValuesFromPatterns) {
  auto v = ParseStixPattern("[ipv4-addr:value = '94.24.86.201']");
  ASSERT_TRUE(v.has_value());
  ASSERT_EQ(v->size(), 1u);
  EXPECT_EQ((*v)[0].type, "ipv4-addr");
  EXPECT_EQ((*v)[0].value, "94.24.86.201");

  v = ParseStixPattern("[ipv4-addr:value='10.0.0.1' OR ipv6-addr:value = '2001:db8::/32']");
  ASSERT_TRUE(v.has_value());
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ((*v)[1].type, "ipv6-addr");
  EXPECT_EQ((*v)[1].value, "2001:db8::/32");

  v = ParseStixPattern("[domain-name:value = 'it\\'s.example']");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ((*v)[0].type, "domain-name");
  EXPECT_EQ((*v)[0].value, "it's.example");

  EXPECT_FALSE(ParseStixPattern("").has_value());
  EXPECT_FALSE(ParseStixPattern("[file:hashes.MD5 = 'abc']").has_value());
  EXPECT_FALSE(ParseStixPattern("[ipv4-addr:value = '1.2.3.4").has_value());
}

TEST(StixTest, Rfc3339) {
  EXPECT_EQ(ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339("2024-05-01T12:00:00Z"), 1714564800);
  EXPECT_EQ(ParseRfc3339("2024-05-01T12:00:00.123456Z"), 1714564800);
  EXPECT_EQ(ParseRfc3339("2024-05-01T14:00:00+02:00"), 1714564800);
  EXPECT_EQ(ParseRfc3339("2024-02-29T00:00:00Z"), 1709164800);
  EXPECT_FALSE(ParseRfc3339("2024-05-01").has_value());
  EXPECT_FALSE(ParseRfc3339("2024-13-01T00:00:00Z").has_value());
  EXPECT_FALSE(ParseRfc3339("2024-05-01T12:00:00").has_value());
  EXPECT_FALSE(ParseRfc3339("2024-05-01T12:00:00Zjunk").has_value());
  EXPECT_EQ(FormatRfc3339(1714564800), "2024-05-01T12:00:00Z");
  // Found by fuzz_json_page: an offset could leave the four-digit years, and years below 1000
  // printed without their zeros; either way the text did not parse back.
  EXPECT_FALSE(ParseRfc3339("9999-12-31T23:59:59-23:59").has_value());
  EXPECT_FALSE(ParseRfc3339("0000-01-01T00:00:00+00:01").has_value());
  EXPECT_EQ(ParseRfc3339("9999-12-31T23:59:59Z"), 253402300799);
  const auto year0 = ParseRfc3339("0000-01-01T00:00:00Z");
  ASSERT_TRUE(year0.has_value());
  EXPECT_EQ(FormatRfc3339(*year0), "0000-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(-62135596800), "0001-01-01T00:00:00Z");
}

// now = 2024-05-10T00:00:00Z. One live indicator, one expired, one revoked, one with two values
// (one a domain), a URL, a non-object, and ids that must not reach a log.
constexpr int64_t kPageNow = 1715299200;
constexpr char kPage[] = R"({"items": [
  {"id": "indicator--a", "pattern": "[ipv4-addr:value = '94.24.86.201']",
   "valid_until": "2024-06-01T00:00:00Z", "revoked": false},
  {"id": "indicator--expired", "pattern": "[ipv4-addr:value = '198.51.100.1']",
   "valid_until": "2024-05-01T00:00:00Z"},
  {"id": "indicator--revoked", "pattern": "[ipv6-addr:value = '2001:db8::/32']",
   "valid_until": null, "revoked": true},
  {"id": "bad id\u0007", "pattern": "[ipv4-addr:value = '10.0.0.1/8' OR domain-name:value = 'x.example']"},
  {"id": 7, "pattern": "[url:value = 'http://x/']"},
  42
], "next_cursor": "abc"})";

TEST(IndicatorPageTest, AFullFetchKeepsOnlyWhatIsInForce) {
  FetchResult r;
  IndicatorPage page;
  IndicatorPageOptions o;
  o.now = kPageNow;
  ASSERT_TRUE(ParseIndicatorPage(kPage, o, &page, &r).ok());
  EXPECT_EQ(page.items, 6u);
  EXPECT_EQ(page.next_cursor, "abc");
  EXPECT_FALSE(page.last);
  ASSERT_EQ(r.prefixes.size(), 2u);
  EXPECT_EQ(r.prefixes[0].ToString(), "94.24.86.201");
  EXPECT_EQ(r.valid_until[0], 1717200000);
  EXPECT_EQ(r.ids[0], "indicator--a");
  EXPECT_EQ(r.prefixes[1].ToString(), "10.0.0.0/8");
  EXPECT_EQ(r.valid_until[1], 0);
  EXPECT_EQ(r.ids[1], "") << "an id with a space or a control byte is dropped";
  EXPECT_TRUE(r.revoked.empty());
  EXPECT_EQ(r.stats.accepted, 2u);
  EXPECT_EQ(r.stats.host_bits_cleared, 1u);
  EXPECT_EQ(r.stats.rejected, 3u);  // the domain, the URL, the 42
  ASSERT_EQ(r.stats.samples.size(), 3u);
  EXPECT_EQ(r.stats.samples[0].text, "x.example");
  EXPECT_EQ(r.stats.samples[2].reason, "not a JSON object");
}

TEST(IndicatorPageTest, AChangesFetchKeepsExpiredAndRevokedFlagged) {
  FetchResult r;
  IndicatorPage page;
  IndicatorPageOptions o;
  o.now = kPageNow;
  o.keep_inactive = true;
  ASSERT_TRUE(ParseIndicatorPage(kPage, o, &page, &r).ok());
  ASSERT_EQ(r.prefixes.size(), 4u);
  ASSERT_EQ(r.revoked.size(), 4u);
  EXPECT_EQ(r.prefixes[1].ToString(), "198.51.100.1");
  EXPECT_EQ(r.valid_until[1], 1714521600) << "expired, with its past validity";
  EXPECT_EQ(r.revoked[1], 0);
  EXPECT_EQ(r.prefixes[2].ToString(), "2001:db8::/32");
  EXPECT_EQ(r.revoked[2], 1);
  EXPECT_EQ(r.ids[2], "indicator--revoked");
  EXPECT_EQ(r.revoked[0] + r.revoked[3], 0);
}

TEST(IndicatorPageTest, WhatIsNotAPageFailsAndAppendsNothing) {
  const struct {
    std::string body;
    const char* message;
  } cases[] = {
      {"", "not valid JSON"},
      {R"({"items": [{"pattern": "[ipv4-addr:value = '1.2.3.4']"})", "not valid JSON"},
      {"<html><body>502</body></html>", "HTML"},
      {std::string("\x1f\x8b\x08\0garbage", 12), "binary"},
      {"[1, 2]", "not an object"},
      {R"({"message": "Unauthorized", "code": 401})", "no \"items\" list"},
      {R"({"items": {"a": 1}})", "no \"items\" list"},
  };
  for (const auto& c : cases) {
    FetchResult r;
    IndicatorPage page;
    const Status st = ParseIndicatorPage(c.body, IndicatorPageOptions{}, &page, &r);
    EXPECT_FALSE(st.ok()) << c.body;
    EXPECT_NE(st.message().find(c.message), std::string::npos) << st.message();
    EXPECT_TRUE(r.prefixes.empty());
    EXPECT_EQ(r.stats.lines, 0u);
  }
  FetchResult r;
  IndicatorPage page;
  page.next_cursor = "stale";
  ASSERT_TRUE(ParseIndicatorPage(R"({"items": [], "next_cursor": null})", {}, &page, &r).ok());
  EXPECT_EQ(page.items, 0u);
  EXPECT_EQ(page.next_cursor, "");
  EXPECT_TRUE(page.last);
  ASSERT_TRUE(ParseIndicatorPage(R"({"items": []})", {}, &page, &r).ok());
  EXPECT_FALSE(page.last) << "a missing cursor is not an explicit null";
  EXPECT_EQ(page.next_cursor, "") << "but nothing follows either";
  ASSERT_TRUE(ParseIndicatorPage(R"({"items": [], "next_cursor": "c"})", {}, &page, &r).ok());
  EXPECT_FALSE(page.last);
  EXPECT_EQ(page.next_cursor, "c");
  // A cursor of another type is no signal at all: taken as "none" it would end a walk early.
  for (const char* bad :
       {R"({"items": [], "next_cursor": 42})", R"({"items": [], "next_cursor": {"a": 1}})",
        R"({"items": [], "next_cursor": false})"}) {
    const Status st = ParseIndicatorPage(bad, {}, &page, &r);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("next_cursor"), std::string::npos) << st.message();
  }
}

TEST(StixTest, ValidFromAndStringBooleansAreRead) {
  FetchResult r;
  IndicatorPage page;
  IndicatorPageOptions o;
  o.now = 1700000000;
  o.keep_inactive = true;
  const char* body = R"({"items": [
    {"pattern": "[ipv4-addr:value = '198.51.100.1']", "valid_from": "2030-01-01T00:00:00Z",
     "revoked": "True"},
    {"pattern": "[ipv4-addr:value = '198.51.100.2']", "valid_from": "2023-01-01T00:00:00.5Z",
     "revoked": "false"},
    {"pattern": "[ipv4-addr:value = '198.51.100.3']", "revoked": "TRUE"},
    {"pattern": "[ipv4-addr:value = '198.51.100.4']", "valid_from": "garbage", "revoked": 1}
  ], "next_cursor": null})";
  ASSERT_TRUE(ParseIndicatorPage(body, o, &page, &r).ok());
  ASSERT_EQ(r.prefixes.size(), 4u);
  ASSERT_EQ(r.valid_from.size(), 4u);
  EXPECT_EQ(r.valid_from[0], 1893456000);
  EXPECT_EQ(r.valid_from[1], 1672531200);
  EXPECT_EQ(r.valid_from[2], 0) << "absent";
  EXPECT_EQ(r.valid_from[3], 0) << "unreadable";
  EXPECT_EQ(r.revoked, (std::vector<uint8_t>{1, 0, 1, 0}));
  // A full snapshot leaves the revoked ones out, whatever the spelling.
  FetchResult full;
  o.keep_inactive = false;
  ASSERT_TRUE(ParseIndicatorPage(body, o, &page, &full).ok());
  EXPECT_EQ(full.prefixes.size(), 2u);
  EXPECT_EQ(full.valid_from.size(), 2u);
}

TEST(SecretFileTest, ReadsAPrivateFileAndStripsTheNewline) {
  TempDir dir;
  Secret s;
  ASSERT_TRUE(ReadSecretFile(dir.Write("k", "  abc-123\r\n"), &s).ok());
  EXPECT_EQ(s.value(), "abc-123");
  ASSERT_TRUE(ReadSecretFile(dir.Write("k2", "xyz", 0400), &s).ok());
  EXPECT_EQ(s.value(), "xyz");
}

TEST(SecretFileTest, RefusesWhatCouldLeakOrInject) {
  TempDir dir;
  Secret s;
  Status st = ReadSecretFile(dir.Write("g", "secret-value", 0640), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("mode 0640"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(st.message().find("secret-value"), std::string::npos);
  EXPECT_FALSE(ReadSecretFile(dir.Write("o", "secret-value", 0604), &s).ok());
  st = ReadSecretFile(dir.Write("two", "line1\nline2\n"), &s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().find("line1"), std::string::npos);
  EXPECT_FALSE(ReadSecretFile(dir.Write("e", " \n"), &s).ok());
  EXPECT_FALSE(ReadSecretFile(dir.Write("big", std::string(5000, 'a')), &s).ok());
  EXPECT_FALSE(ReadSecretFile(dir.path(), &s).ok());  // a directory
  const std::string target = dir.Write("real", "secret-value");
  const std::string link = dir.path() + "/link";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  st = ReadSecretFile(link, &s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("symbolic link"), std::string::npos);
  EXPECT_FALSE(ReadSecretFile("", &s).ok());
}

TEST(SecretFileTest, RedactReplacesEveryOccurrence) {
  EXPECT_EQ(Redact("a KEY b KEY", "KEY"), "a [redacted] b [redacted]");
  EXPECT_EQ(Redact("nothing", ""), "nothing");
}

TEST(ListBodyTest, RecognisesWhatIsNotAList) {
  EXPECT_TRUE(CheckListShape("1.2.3.4\n5.6.7.8\n", "text/plain").ok());
  EXPECT_TRUE(CheckListShape("", "").ok());
  EXPECT_FALSE(CheckListShape("1.2.3.4\n", "text/html; charset=utf-8").ok());
  EXPECT_FALSE(CheckListShape("\xEF\xBB\xBF  <!DOCTYPE html><html>", "text/plain").ok());
  EXPECT_FALSE(CheckListShape("{\"message\": \"no\"}", "").ok());
  EXPECT_FALSE(CheckListShape(std::string("1.2.3.4\n\0\0", 10), "").ok());
}

TEST(ListBodyTest, RejectedRatioAndEntryCount) {
  ParseStats stats;
  stats.accepted = 10;
  stats.rejected = 10;
  EXPECT_TRUE(CheckRejectedRatio(stats, 0.5).ok());
  stats.rejected = 11;
  EXPECT_FALSE(CheckRejectedRatio(stats, 0.5).ok());
  EXPECT_TRUE(CheckRejectedRatio(stats, 1.0).ok());
  EXPECT_EQ(CountEntryLines("a\nb\r\n\r\n  \nc"), 3u);
  EXPECT_EQ(CountEntryLines(""), 0u);
}

TEST(HttpErrorsTest, EveryClassHasItsErrorAndAdvice) {
  struct Case {
    CURLcode code;
    FetchError error;
    bool retryable;
    const char* text;
  } cases[] = {
      {CURLE_COULDNT_RESOLVE_HOST, FetchError::kNetwork, true, "DNS"},
      {CURLE_COULDNT_RESOLVE_PROXY, FetchError::kNetwork, true, "proxy"},
      {CURLE_COULDNT_CONNECT, FetchError::kNetwork, true, "cannot connect"},
      {CURLE_OPERATION_TIMEDOUT, FetchError::kTimeout, true, "timed out"},
      {CURLE_PARTIAL_FILE, FetchError::kBadBody, true, "truncated"},
      {CURLE_RECV_ERROR, FetchError::kNetwork, true, "connection"},
      {CURLE_PEER_FAILED_VERIFICATION, FetchError::kTls, false, "ca_file"},
      {CURLE_SSL_CONNECT_ERROR, FetchError::kTls, false, "TLS"},
      {CURLE_FILESIZE_EXCEEDED, FetchError::kTooLarge, false, "max_body_bytes"},
      {CURLE_BAD_CONTENT_ENCODING, FetchError::kBadBody, false, "compressed"},
      {CURLE_UNSUPPORTED_PROTOCOL, FetchError::kConfig, false, "url"},
  };
  for (const Case& c : cases) {
    const FailureClass f = ClassifyCurlError(c.code, "", false, 100);
    EXPECT_EQ(f.error, c.error) << curl_easy_strerror(c.code);
    EXPECT_EQ(f.retryable, c.retryable) << curl_easy_strerror(c.code);
    EXPECT_NE(f.message.find(c.text), std::string::npos) << f.message;
  }
  EXPECT_EQ(ClassifyCurlError(CURLE_WRITE_ERROR, "", true, 100).error, FetchError::kTooLarge);

  EXPECT_EQ(ClassifyHttpStatus(400, "", "").error, FetchError::kConfig);
  EXPECT_EQ(ClassifyHttpStatus(404, "", "").error, FetchError::kConfig);
  EXPECT_EQ(ClassifyHttpStatus(401, "", "").error, FetchError::kAuth);
  EXPECT_EQ(ClassifyHttpStatus(403, "", "").error, FetchError::kAuth);
  EXPECT_EQ(ClassifyHttpStatus(429, "", "").error, FetchError::kRateLimited);
  EXPECT_TRUE(ClassifyHttpStatus(429, "", "").retryable);
  EXPECT_EQ(ClassifyHttpStatus(503, "", "").error, FetchError::kServer);
  EXPECT_TRUE(ClassifyHttpStatus(503, "", "").retryable);
  EXPECT_FALSE(ClassifyHttpStatus(401, "", "").retryable);
  const FailureClass redirect = ClassifyHttpStatus(302, "", "https://login.example/sso");
  EXPECT_EQ(redirect.error, FetchError::kConfig);
  EXPECT_NE(redirect.message.find("login.example"), std::string::npos);
  const FailureClass said = ClassifyHttpStatus(400, "{\"message\": \"bad limit\"}", "");
  EXPECT_NE(said.message.find("bad limit"), std::string::npos) << said.message;
}

TEST(SekoiaOptionsTest, ValidateRefusesUnsafeConfigurations) {
  SekoiaOptions o;
  o.collection_id = "abc";
  o.api_key_file = "/etc/iocwall/api_key";
  EXPECT_TRUE(o.Validate().ok());
  SekoiaOptions bad = o;
  bad.url = "http://mirror.local/api";
  EXPECT_NE(bad.Validate().message().find("allow_http"), std::string::npos);
  bad.allow_http = true;
  EXPECT_TRUE(bad.Validate().ok());
  bad = o;
  bad.url = "https://user:pass@app.sekoia.io/api";
  EXPECT_FALSE(bad.Validate().ok());
  bad = o;
  bad.url = "https://app.sekoia.io/api?x=1";
  EXPECT_FALSE(bad.Validate().ok());
  bad = o;
  bad.url = "ftp://app.sekoia.io";
  EXPECT_FALSE(bad.Validate().ok());
  bad = o;
  bad.collection_id = "../../etc";
  EXPECT_FALSE(bad.Validate().ok());
  bad = o;
  bad.collection_id.clear();
  EXPECT_FALSE(bad.Validate().ok());
}

TEST(FileSourceTest, ReadsAListWithTheFeedParser) {
  TempDir dir;
  const std::string path =
      dir.Write("list.txt", "\xEF\xBB\xBF# local\r\n192.0.2.1\r\n2001:db8::/48\r\nnot-an-ip\r\n");
  FileSource source({path, 1 << 20, 0.5});
  EXPECT_EQ(source.Name(), "file " + path);
  const FetchResult r = source.Fetch();
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  ASSERT_EQ(r.prefixes.size(), 2u);
  EXPECT_EQ(r.prefixes[0].ToString(), "192.0.2.1");
  EXPECT_EQ(r.prefixes[1].ToString(), "2001:db8::/48");
  EXPECT_EQ(r.stats.rejected, 1u);
  EXPECT_EQ(r.pages, 1u);
  EXPECT_GT(r.bytes, 0u);
}

TEST(FileSourceTest, FailuresAreClassified) {
  TempDir dir;
  FetchResult r = FileSource({dir.path() + "/missing", 1 << 20, 0.5}).Fetch();
  EXPECT_EQ(r.error, FetchError::kConfig);
  EXPECT_NE(r.status.message().find("missing"), std::string::npos);
  r = FileSource({dir.Write("big", std::string(2000, '1')), 1000, 0.5}).Fetch();
  EXPECT_EQ(r.error, FetchError::kTooLarge);
  r = FileSource({dir.Write("html", "<html>oops</html>\n"), 1 << 20, 0.5}).Fetch();
  EXPECT_EQ(r.error, FetchError::kBadBody);
  EXPECT_TRUE(r.prefixes.empty());
  r = FileSource({dir.Write("domains", "a.example\nb.example\n1.2.3.4\n"), 1 << 20, 0.5}).Fetch();
  EXPECT_EQ(r.error, FetchError::kBadBody);
  EXPECT_TRUE(r.prefixes.empty());
}

TEST(IdListTest, ReadsLikeAVectorOfStrings) {
  IdList ids;
  EXPECT_TRUE(ids.empty());
  ids.push_back("indicator--a");
  ids.push_back("");
  ids.push_back(std::string(5000, 'x'));  // across the store's blocks
  ids.push_back("indicator--d");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids[0], "indicator--a");
  EXPECT_EQ(ids[1], "");
  EXPECT_EQ(ids[2], std::string(5000, 'x'));
  EXPECT_EQ(ids[3], "indicator--d");
  // Taking entries back (a refused page) and growing again.
  ids.resize(2);
  ASSERT_EQ(ids.size(), 2u);
  ids.push_back("indicator--e");
  EXPECT_EQ(ids[2], "indicator--e");
  ids.resize(4);
  EXPECT_EQ(ids[3], "") << "grown with empty ids";
  EXPECT_EQ(ids, (IdList{"indicator--a", "", "indicator--e", ""}));
  EXPECT_NE(ids, (IdList{"indicator--a", "", "indicator--e", "x"}));
  // From the vector it replaces, as the agent's fakes assign it.
  const std::vector<std::string> v = {"a", "bb", ""};
  IdList from = v;
  EXPECT_EQ(from, (IdList{"a", "bb", ""}));
  from.clear();
  EXPECT_TRUE(from.empty());
  ids.resize(0);
  EXPECT_EQ(ids, IdList{});
}

}  // namespace
}  // namespace iocwall
