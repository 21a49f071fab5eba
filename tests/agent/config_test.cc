#include "agent/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <fstream>

namespace iocwall {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    path_ = ::testing::TempDir() + "/iocwall-config-" + std::to_string(::getpid()) + ".conf";
    std::ofstream(path_) << text;
    return path_;
  }
  Result<Invocation> Parse(std::vector<std::string> extra) {
    std::vector<std::string> args = {"iocwall", "-c", path_};
    args.insert(args.end(), extra.begin(), extra.end());
    return ParseInvocation(args);
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::string path_;
};

TEST_F(ConfigTest, ReadsEverySectionWithDefaults) {
  Write(
      "# comment\n[api]\nurl = https://api.example.test/api\nauth = bearer\n"
      "[collections]\nid = abc\nid = def\n[files]\npath = /etc/extra.txt\n"
      "[allowlist]\nprefix = 10.0.0.0/8\nprefix = 2001:db8::/32\n"
      "[sync]\ninterval = 10m\nmax_shrink_percent = 20\n"
      "[nftables]\nhooks = input, forward\naction = reject\npriority = -5\n");
  auto inv = Parse({"--once"});
  ASSERT_TRUE(inv.ok()) << inv.message();
  const Config& c = inv->config;
  EXPECT_EQ(inv->mode, Mode::kOnce);
  EXPECT_EQ(c.api.url, "https://api.example.test/api");
  EXPECT_EQ(c.api.auth, "bearer");
  EXPECT_EQ(c.collections, (std::vector<std::string>{"abc", "def"}));
  EXPECT_EQ(c.files, std::vector<std::string>{"/etc/extra.txt"});
  ASSERT_EQ(c.allowlist.size(), 2u);
  EXPECT_EQ(c.allowlist[1].ToString(), "2001:db8::/32");
  EXPECT_EQ(c.sync.interval.count(), 600);
  EXPECT_EQ(c.sync.jitter.count(), 30);  // default
  EXPECT_EQ(c.sync.max_shrink_percent, 20u);
  EXPECT_EQ(c.nft.hooks.size(), 2u);
  EXPECT_EQ(c.nft.action, Action::kReject);
  EXPECT_EQ(c.nft.priority, -5);
  EXPECT_EQ(c.nft.table, "iocwall");
  EXPECT_TRUE(Validate(c).ok());
}

TEST_F(ConfigTest, InlineCommentsAfterASpaceAreStrippedAndBareOnesAreData) {
  Write(
      "[api] ; the Sekoia.io API\n"
      "url = https://feed.example.test/api;v=2#top   ; a ';' and a '#' inside a URL\n"
      "proxy = http://proxy.example.test:3128/#p\t# tab before the comment\n"
      "[collections]\nid = abc # the first\n"
      "[allowlist]\nprefix = 192.0.2.0/24                    ; management\n");
  auto inv = Parse({"--once"});
  ASSERT_TRUE(inv.ok()) << inv.message();
  EXPECT_EQ(inv->config.api.url, "https://feed.example.test/api;v=2#top");
  EXPECT_EQ(inv->config.api.proxy.value_or(""), "http://proxy.example.test:3128/#p");
  EXPECT_EQ(inv->config.collections, std::vector<std::string>{"abc"});
  ASSERT_EQ(inv->config.allowlist.size(), 1u);
  EXPECT_EQ(inv->config.allowlist[0].ToString(), "192.0.2.0/24");
}

TEST_F(ConfigTest, AuthDefaultsToBearerAndBasicStaysAvailable) {
  Write("[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.auth, "bearer") << "what Sekoia documents for its API";
  Write("[api]\nauth = basic\n[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.auth, "basic") << "older configurations keep working";
}

TEST_F(ConfigTest, FetchTimeoutBoundsTheWholeFetch) {
  Write("[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.fetch_timeout.count(), 300);
  Write("[api]\nfetch_timeout = 90s\n[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.fetch_timeout.count(), 90);
  Write("[api]\nfetch_timeout = 0\n[collections]\nid = abc\n");
  const auto bad = Parse({});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("fetch_timeout"), std::string::npos) << bad.message();
}

TEST_F(ConfigTest, MaxBodyDefaultFollowsTheFormat) {
  Write("[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.max_body, 64ull << 20);
  Write("[api]\nformat = json\n[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.max_body, 4ull << 30);
  Write("[api]\nformat = json\nmax_body = 4096\n[collections]\nid = abc\n");
  EXPECT_EQ(Parse({})->config.api.max_body, 4096u) << "an explicit value wins";
}

TEST_F(ConfigTest, FlagsOverrideTheFile) {
  Write("[sync]\ninterval = 10m\n[collections]\nid = abc\n");
  auto inv = Parse({"--sync.interval", "1h", "--nftables.table", "edge"});
  ASSERT_TRUE(inv.ok()) << inv.message();
  EXPECT_EQ(inv->config.sync.interval.count(), 3600);
  EXPECT_EQ(inv->config.nft.table, "edge");
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineAndKey) {
  Write("[api]\nurl = https://x.test\n\n[sync]\nintervall = 5m\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.message(),
            path_ + ":5: unknown key 'intervall' in section [sync]; did you mean 'interval'?");
}

TEST_F(ConfigTest, UnknownKeyOfAnotherSectionNamesThatSection) {
  Write("[collections]\nid = abc\n[api]\ninterval = 5m\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.message(), path_ +
                               ":4: unknown key 'interval' in section [api]; did you mean "
                               "interval in section [sync]?");
}

TEST_F(ConfigTest, UnknownKeyFarFromAnyListsTheSectionsKeys) {
  Write("[collections]\nfeed = abc\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.message(),
            path_ + ":2: unknown key 'feed' in section [collections]; its keys are id");
}

// "[collection]" was reported as "unknown key 'id'", and an empty misspelt section passed.
TEST_F(ConfigTest, UnknownSectionIsNamedAtItsHeaderWithASuggestion) {
  Write("[collection]\nid = abc\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.message(), path_ + ":1: unknown section [collection]; did you mean [collections]?");

  Write("[collections]\nid = abc\n\n[metric]\n");
  inv = Parse({});
  ASSERT_FALSE(inv.ok()) << "an empty misspelt section is an error too";
  EXPECT_EQ(inv.message(), path_ + ":4: unknown section [metric]; did you mean [metrics]?");

  Write("[collections]\nid = abc\n[Sync]\ninterval = 5m\n");
  inv = Parse({});
  ASSERT_FALSE(inv.ok()) << "section names are lower case";
  EXPECT_EQ(inv.message(), path_ + ":3: unknown section [Sync]; did you mean [sync]?");

  Write("[collections]\nid = abc\n[whitelist]\n");
  inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.message(),
            path_ +
                ":3: unknown section [whitelist]; the sections are [api], "
                "[collections], [files], [allowlist], [sync], [nftables], [metrics]");
}

TEST_F(ConfigTest, EverySectionOfTheHelpIsKnown) {
  Write(
      "[api]\n[collections]\nid = abc\n[files]\n[allowlist]\n[sync]\n[nftables]\n"
      "[metrics]\n");
  auto inv = Parse({});
  EXPECT_TRUE(inv.ok()) << inv.message();
}

// A line without '=' may be an API key pasted into the wrong file: it is never quoted.
TEST_F(ConfigTest, LineWithoutEqualsIsNotQuoted) {
  Write("[collections]\nid = abc\n[api]\nSekr3tKeyValue\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.message().find(path_ + ":4: expected 'key = value'"), std::string::npos)
      << inv.message();
  EXPECT_EQ(inv.message().find("Sekr3tKeyValue"), std::string::npos) << inv.message();
}

// A configuration error and a command-line error exit differently (78 and 2).
TEST_F(ConfigTest, ConfigurationErrorsAreToldFromCommandLineErrors) {
  bool config_error = true;
  Write("[collections]\nid = abc\n");
  EXPECT_FALSE(ParseInvocation({"iocwall", "-c", path_, "--bogus"}, &config_error).ok());
  EXPECT_FALSE(config_error);
  EXPECT_FALSE(ParseInvocation({"iocwall", "-c", path_, "--once", "--status"}, &config_error).ok());
  EXPECT_FALSE(config_error);
  EXPECT_FALSE(
      ParseInvocation({"iocwall", "-c", path_, "--once", "--no-path-check"}, &config_error).ok());
  EXPECT_FALSE(config_error) << "--no-path-check goes with --check-config";
  EXPECT_FALSE(
      ParseInvocation({"iocwall", "-c", path_, "--sync.interval", "soon"}, &config_error).ok());
  EXPECT_TRUE(config_error) << "a key given as a flag is configuration";
  Write("[collection]\nid = abc\n");
  EXPECT_FALSE(ParseInvocation({"iocwall", "-c", path_}, &config_error).ok());
  EXPECT_TRUE(config_error);
  EXPECT_FALSE(ParseInvocation({"iocwall", "-c", "/nonexistent/iocwall.conf"}, &config_error).ok());
  EXPECT_TRUE(config_error) << "a missing file is a configuration error";
  Write("[collections]\nid = abc\n");
  auto inv =
      ParseInvocation({"iocwall", "-c", path_, "--check-config", "--no-path-check"}, &config_error);
  ASSERT_TRUE(inv.ok()) << inv.message();
  EXPECT_FALSE(inv->check_paths);
}

TEST_F(ConfigTest, BadValueNamesFileLineAndKey) {
  Write("[collections]\nid = abc\n[sync]\ninterval = soon\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.message().find(path_ + ":4: [sync] interval: invalid value 'soon'"),
            std::string::npos)
      << inv.message();
}

TEST_F(ConfigTest, BadValuesAreRefused) {
  for (std::string bad :
       {"[nftables]\naction = accept\n", "[nftables]\nhooks = input,prerouting\n",
        "[allowlist]\nprefix = example.com\n", "[sync]\nmax_shrink_percent = 101\n",
        "[sync]\nmin_prefix_v4 = 0\n", "[api]\nauth = digest\n", "[nftables]\ntable = a b\n",
        "[api]\nallow_http = maybe\n", "[collections]\nid = ../../etc\n", "[sync]\ninterval = 1s\n",
        "[api]\nurl\n", "url = x\n", "[api\n"}) {
    Write(bad);
    EXPECT_FALSE(Parse({}).ok()) << bad;
  }
}

TEST_F(ConfigTest, AllowlistPrefixWithHostBitsSaysWhy) {
  Write("[allowlist]\nprefix = 10.0.0.1/8\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.message().find(":2: [allowlist] prefix: invalid value '10.0.0.1/8'"),
            std::string::npos)
      << inv.message();
  EXPECT_NE(inv.message().find("10.0.0.0/8"), std::string::npos) << inv.message();
}

TEST_F(ConfigTest, RepeatedSingleKeyIsAnError) {
  Write("[api]\nurl = https://a.test\nurl = https://b.test\n");
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.message().find(":3: [api] url is given twice (first on line 2)"), std::string::npos)
      << inv.message();
}

TEST_F(ConfigTest, MissingFileIsAnError) {
  path_ = "/nonexistent/iocwall.conf";
  auto inv = Parse({});
  ASSERT_FALSE(inv.ok());
  EXPECT_NE(inv.message().find("/nonexistent/iocwall.conf"), std::string::npos);
}

TEST_F(ConfigTest, HelpAndVersionNeedNoFile) {
  path_ = "/nonexistent/iocwall.conf";
  EXPECT_TRUE(Parse({"--help"}).ok());
  EXPECT_TRUE(Parse({"--version"}).ok());
}

TEST_F(ConfigTest, ConflictingModesAreRefused) {
  Write("[collections]\nid = abc\n");
  EXPECT_FALSE(Parse({"--once", "--status"}).ok());
  EXPECT_FALSE(Parse({"--json"}).ok());
  EXPECT_FALSE(Parse({"--status", "--force"}).ok());
  EXPECT_FALSE(Parse({"--no-such-flag"}).ok());
}

TEST_F(ConfigTest, ValidateRefusesNothingToEnforceAndPlainHttp) {
  Write("[sync]\ninterval = 5m\n");
  auto inv = Parse({});
  ASSERT_TRUE(inv.ok());
  EXPECT_NE(Validate(inv->config).message().find("nothing to enforce"), std::string::npos);
  Write("[api]\nurl = http://mirror.test\n[collections]\nid = a\n");
  inv = Parse({});
  ASSERT_TRUE(inv.ok());
  EXPECT_NE(Validate(inv->config).message().find("allow_http"), std::string::npos);
  Write("[api]\nurl = http://mirror.test\nallow_http = true\n[collections]\nid = a\n");
  inv = Parse({});
  ASSERT_TRUE(inv.ok());
  EXPECT_TRUE(Validate(inv->config).ok());
}

// "--api.api_key SECRET" was taken for --api.api_key_file by Boost's prefix guessing, and the
// file error then printed SECRET. Without guessing, every misspelt or unknown flag is refused
// and no form of the error quotes the text that follows it.
TEST_F(ConfigTest, UnknownFlagsAreRefusedWithoutEchoingTheirValue) {
  Write("[files]\npath = /etc/extra.txt\n");
  const std::string secret = "Sekr3tKeyValue";
  const std::vector<std::vector<std::string>> attempts = {{"--api.api_key", secret},
                                                          {"--api.api_key=" + secret},
                                                          {"--api.api_key_fil", secret},
                                                          {"--api.api", secret},
                                                          {"--bogus=" + secret},
                                                          {"-z" + secret},
                                                          {"-h" + secret},
                                                          {"--once", "--api.key=" + secret}};
  for (const auto& a : attempts) {
    auto inv = Parse(a);
    ASSERT_FALSE(inv.ok()) << a[0] << " was accepted";
    EXPECT_EQ(inv.message().find(secret), std::string::npos) << inv.message();
    EXPECT_EQ(inv.message().find("Sekr3t"), std::string::npos) << inv.message();
    EXPECT_NE(inv.message().find("unrecognised option"), std::string::npos) << inv.message();
  }
  EXPECT_EQ(UnknownOptionMessage("--api.api_key=" + secret),
            "unrecognised option '--api.api_key' (the text after it is not shown)");
  EXPECT_EQ(UnknownOptionMessage("--bogus"), "unrecognised option '--bogus'");
}

TEST_F(ConfigTest, MisspeltFlagsGetTheNearOne) {
  Write("[collections]\nid = abc\n");
  EXPECT_EQ(Parse({"--sync.intervall", "5m"}).message(),
            "unrecognised option '--sync.intervall'; did you mean --sync.interval? (see iocwall "
            "--help)");
  EXPECT_EQ(Parse({"--dryrun"}).message(),
            "unrecognised option '--dryrun'; did you mean --dry-run? (see iocwall --help)");
  const std::string secret = "Sekr3tKeyValue";
  EXPECT_EQ(Parse({"--api.api_key_fil=" + secret}).message(),
            "unrecognised option '--api.api_key_fil' (the text after it is not shown); did you "
            "mean --api.api_key_file? (see iocwall --help)");
  EXPECT_EQ(Parse({"--frobnicate"}).message(),
            "unrecognised option '--frobnicate' (see iocwall --help)");
}

// Negative control: Boost's default style does guess, and quotes the whole token; the test
// above would fail on a parser left with it.
TEST(ConfigGuessingControl, DefaultStyleGuessesAndEchoes) {
  namespace po = boost::program_options;
  po::options_description d;
  d.add_options()("api.api_key_file", po::value<std::string>());
  std::vector<std::string> args = {"--api.api_key", "SECRET"};
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(d).run(), vm);
  ASSERT_EQ(vm.count("api.api_key_file"), 1u);
  EXPECT_EQ(vm["api.api_key_file"].as<std::string>(), "SECRET");
  try {
    po::command_line_parser(std::vector<std::string>{"--bogus=SECRET"}).options(d).run();
    FAIL() << "unknown option accepted";
  } catch (const po::unknown_option& e) {
    EXPECT_NE(std::string(e.what()).find("SECRET"), std::string::npos) << e.what();
  }
}

TEST(DurationTest, Units) {
  EXPECT_EQ(ParseDuration("30")->count(), 30);
  EXPECT_EQ(ParseDuration("30s")->count(), 30);
  EXPECT_EQ(ParseDuration("5m")->count(), 300);
  EXPECT_EQ(ParseDuration("2h")->count(), 7200);
  EXPECT_EQ(ParseDuration("1d")->count(), 86400);
  EXPECT_FALSE(ParseDuration("").has_value());
  EXPECT_FALSE(ParseDuration("-1").has_value());
  EXPECT_FALSE(ParseDuration("5w").has_value());
  EXPECT_FALSE(ParseDuration("m").has_value());
  EXPECT_FALSE(ParseDuration("99999999999d").has_value());
}

TEST_F(ConfigTest, MetricsModeDefaultsToReadableAndRefusesWriteBits) {
  Write("[collections]\nid = abc\n[metrics]\ntextfile = /run/iocwall/iocwall.prom\n");
  EXPECT_EQ(Parse({})->config.metrics_mode, 0644u);
  Write("[collections]\nid = abc\n[metrics]\nmode = 0640\n");
  EXPECT_EQ(Parse({})->config.metrics_mode, 0640u);
  Write("[collections]\nid = abc\n[metrics]\nmode = 600\n");
  EXPECT_EQ(Parse({})->config.metrics_mode, 0600u);
  for (const char* bad : {"0666", "0755", "4644", "rw-r--r--", "", "06444", "0648"}) {
    Write(std::string("[collections]\nid = abc\n[metrics]\nmode = ") + bad + "\n");
    auto inv = Parse({});
    EXPECT_FALSE(inv.ok()) << bad;
    if (!inv.ok()) {
      EXPECT_NE(inv.message().find("[metrics] mode"), std::string::npos) << inv.message();
    }
  }
}

TEST(HelpTest, ListsEveryKeyAsAFlag) {
  std::string help = HelpText();
  for (const char* key : {"--api.url", "--api.api_key_file", "--collections.id", "--files.path",
                          "--allowlist.prefix", "--sync.max_shrink_percent", "--nftables.hooks",
                          "--metrics.textfile", "--metrics.mode", "--once", "--dry-run", "--status",
                          "--explain", "--restore", "--flush", "--force", "--check-config"}) {
    EXPECT_NE(help.find(key), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace iocwall

namespace iocwall {
namespace {

// The configuration is read as a bounded regular file: a FIFO planted at its path neither
// blocks the agent nor is taken for a configuration.
TEST(ConfigFileTest, AFifoOrAHugeFileIsRefusedWithoutBlocking) {
  const std::string fifo = ::testing::TempDir() + "/iocwall-fifo-" + std::to_string(::getpid());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Result<Invocation> r = ParseInvocation({"iocwall", "-c", fifo, "--check-config"});
  ::unlink(fifo.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("cannot be read"), std::string::npos) << r.message();
  const std::string huge = ::testing::TempDir() + "/iocwall-huge-" + std::to_string(::getpid());
  {
    std::ofstream out(huge);
    const std::string comment = "# " + std::string(1000, 'x') + "\n";
    for (int i = 0; i < 2000; ++i) out << comment;
  }
  r = ParseInvocation({"iocwall", "-c", huge, "--check-config"});
  ::unlink(huge.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.message().find("cannot be read"), std::string::npos) << r.message();
}

}  // namespace
}  // namespace iocwall
