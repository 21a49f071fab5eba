// The safe-file helpers (state, metrics, list files, key file) and the key's protection:
// planted links, FIFOs, devices and huge files; MADV_DONTDUMP; every quoted form of the key.
#include "feeds/safe_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "feeds/http_errors.h"
#include "feeds/secret_file.h"

namespace iocwall {
namespace {

class SafeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/iocwall-safe-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_EQ(::mkdir(dir_.c_str(), 0700), 0);
    auto fd = OpenTrustedDir(dir_, DirRules{});
    ASSERT_TRUE(fd.ok()) << fd.message();
    fd_ = std::move(fd.value());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string dir_;
  UniqueFd fd_;
};

TEST(UniqueFdTest, ClosesOnceAndMoves) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(raw, 0);
  {
    UniqueFd a(raw);
    UniqueFd b(std::move(a));
    EXPECT_FALSE(a.valid());
    EXPECT_EQ(b.get(), raw);
  }
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1) << "closed when its owner went away";
}

TEST_F(SafeFileTest, WritesAtomicallyWithTheModeAndLeavesNoTemporary) {
  ASSERT_TRUE(WriteFileAtomicAt(fd_.get(), "f", "one", 0600, dir_ + "/f").ok());
  ASSERT_TRUE(WriteFileAtomicAt(fd_.get(), "f", "two", 0644, dir_ + "/f").ok());
  EXPECT_EQ(Slurp(dir_ + "/f"), "two");
  struct stat st;
  ASSERT_EQ(::stat((dir_ + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) n += e.exists() ? 1 : 0;
  EXPECT_EQ(n, 1u);
}

// A symlink planted at the final name is replaced, never written through.
TEST_F(SafeFileTest, PlantedSymlinkAtTheNameIsReplacedNotFollowed) {
  const std::string victim = dir_ + "/victim";
  std::ofstream(victim) << "precious";
  ASSERT_EQ(::symlink(victim.c_str(), (dir_ + "/state.json").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomicAt(fd_.get(), "state.json", "{}", 0600, dir_ + "/state.json").ok());
  EXPECT_EQ(Slurp(victim), "precious");
  struct stat st;
  ASSERT_EQ(::lstat((dir_ + "/state.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(SafeFileTest, TrustedDirRefusesLinksLooseModesAndStrangers) {
  const std::string link = dir_ + "/link";
  const std::string target = dir_ + "/target";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  DirRules rules;
  rules.create = true;
  rules.private_mode = true;
  rules.what = "state_dir";
  for (const std::string& p : {link, link + "/", link + "//"}) {
    auto r = OpenTrustedDir(p, rules);
    ASSERT_FALSE(r.ok()) << p;
    EXPECT_NE(r.message().find("is a symbolic link"), std::string::npos) << r.message();
  }
  struct stat st;
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u) << "a link's target is never chmodded";

  ASSERT_EQ(::chmod(target.c_str(), 0757), 0);
  auto loose = OpenTrustedDir(target, rules);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.message().find("(mode 0757)"), std::string::npos) << loose.message();
  EXPECT_NE(loose.message().find("run: chmod go-w " + target), std::string::npos);

  // Owned by someone else: root runs the agent, so a root-owned system directory is the
  // control as root and the refusal otherwise.
  auto usr = OpenTrustedDir("/usr", DirRules{});
  if (::geteuid() == 0) {
    EXPECT_TRUE(usr.ok()) << usr.message();
  } else {
    ASSERT_FALSE(usr.ok());
    EXPECT_NE(usr.message().find("is owned by uid 0"), std::string::npos) << usr.message();
  }
  auto sticky = OpenTrustedDir("/tmp", DirRules{});
  EXPECT_FALSE(sticky.ok()) << "/tmp is writable by others";

  auto made = OpenTrustedDir(dir_ + "/new", rules);
  ASSERT_TRUE(made.ok()) << made.message();
  ASSERT_EQ(::stat((dir_ + "/new").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(SafeFileTest, ReadsOnlyBoundedRegularFilesAndNeverBlocks) {
  std::ofstream(dir_ + "/ok") << "hello";
  ReadOutcome r = ReadRegularFile(fd_.get(), "ok", 5, false);
  ASSERT_EQ(r.kind, ReadOutcome::kOk) << r.message;
  EXPECT_EQ(r.data, "hello");
  r = ReadRegularFile(fd_.get(), "ok", 4, false);
  EXPECT_EQ(r.kind, ReadOutcome::kUnusable);
  EXPECT_TRUE(r.too_large);
  EXPECT_EQ(ReadRegularFile(fd_.get(), "absent", 5, false).kind, ReadOutcome::kAbsent);

  ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  const auto t0 = std::chrono::steady_clock::now();
  r = ReadRegularFile(fd_.get(), "fifo", 1 << 20, true);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(r.kind, ReadOutcome::kUnusable);
  EXPECT_NE(r.message.find("FIFO"), std::string::npos) << r.message;

  ASSERT_EQ(::symlink("/dev/zero", (dir_ + "/zero").c_str()), 0);
  r = ReadRegularFile(fd_.get(), "zero", 1 << 20, false);
  EXPECT_EQ(r.kind, ReadOutcome::kUnusable);
  EXPECT_NE(r.message.find("symbolic link"), std::string::npos) << r.message;
  r = ReadRegularFile(fd_.get(), "zero", 1 << 20, true);  // a list file may be a link
  EXPECT_EQ(r.kind, ReadOutcome::kUnusable);
  EXPECT_NE(r.message.find("character device"), std::string::npos) << r.message;

  EXPECT_NE(SetAsideAt(fd_.get(), "fifo", dir_, "bad").find("set aside as " + dir_ + "/fifo.bad-"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/fifo"));
}

// The key's pages carry the "dd" (do not dump) flag in /proc/self/smaps.
std::string VmFlagsOf(const void* p) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  const auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(in, line)) {
    // A mapping's header: "lo-hi perms ...", the first token all hex digits and one dash.
    const std::string first = line.substr(0, line.find(' '));
    const size_t dash = first.find('-');
    if (dash != std::string::npos &&
        first.find_first_not_of("0123456789abcdef-") == std::string::npos) {
      const uintptr_t lo = std::stoull(first.substr(0, dash), nullptr, 16);
      const uintptr_t hi = std::stoull(first.substr(dash + 1), nullptr, 16);
      inside = lo <= a && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

TEST(SecretTest, KeyPagesAreExcludedFromCoreDumpsAndWiped) {
  const std::string dir = ::testing::TempDir() + "/iocwall-key-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0);
  const std::string path = dir + "/api_key";
  { std::ofstream(path) << "k3y-value\n"; }
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  Secret s;
  ASSERT_TRUE(ReadSecretFile(path, &s).ok());
  EXPECT_EQ(s.value(), "k3y-value");
  EXPECT_STREQ(s.c_str(), "k3y-value");
  ASSERT_NE(s.storage(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.storage()) % ::sysconf(_SC_PAGESIZE), 0u);
  const std::string flags = VmFlagsOf(s.storage());
  ASSERT_FALSE(flags.empty()) << "mapping not found in smaps";
  EXPECT_NE(flags.find(" dd"), std::string::npos) << flags;
  // Control: an ordinary heap buffer is dumped, so the check above can fail.
  std::string heap(1 << 20, 'x');
  EXPECT_EQ(VmFlagsOf(heap.data()).find(" dd"), std::string::npos) << VmFlagsOf(heap.data());
  Secret moved(std::move(s));
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(moved.value(), "k3y-value");
  std::filesystem::remove_all(dir);
}

TEST(KeyScrubberTest, EveryQuotedFormIsRedacted) {
  const std::string key = "Ab+/c=d?e&f1";
  KeyScrubber k("iocwall", key);
  // base64("iocwall:Ab+/c=d?e&f1") and friends, as a server could echo them.
  const std::string basic = "aW9jd2FsbDpBYisvYz1kP2UmZjE";  // unpadded
  const std::string text = "raw " + key + " basic " + basic + "= basic_nopad " + basic +
                           " b64 QWIrL2M9ZD9lJmYx url QWIrL2M9ZD9lJmYx pct Ab%2B%2Fc%3Dd%3Fe%26f1";
  const std::string out = k.Scrub(text);
  EXPECT_EQ(out.find(key), std::string::npos) << out;
  EXPECT_EQ(out.find("aW9jd2FsbDpBYisv"), std::string::npos) << out;
  EXPECT_EQ(out.find("QWIrL2M9"), std::string::npos) << out;
  EXPECT_EQ(out.find("Ab%2B%2F"), std::string::npos) << out;
  EXPECT_EQ(KeyScrubber().Scrub(text), text) << "control: without a key nothing changes";
}

TEST(ScrubUrlTest, DropsCredentialsQueryAndFragment) {
  EXPECT_EQ(ScrubUrl("https://iocwall:S3cret@evil.example/x?k=S3cret#S3cret"),
            "https://[credentials removed]@evil.example/x");
  EXPECT_EQ(ScrubUrl("https://evil.example/a@b"), "https://evil.example/a@b");
  EXPECT_EQ(ScrubUrl("/login?next=x"), "/login");
  EXPECT_EQ(ScrubUrl("https://h/\r\nSet-Cookie: x"), "https://h/  Set-Cookie: x");
}

}  // namespace
}  // namespace iocwall
