#include "tests/feeds/sim_fixture.h"

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "feeds/feedsim/sim_time.h"

extern char** environ;

namespace iocwall::testing {

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string RandomKey() {
  std::random_device rd;
  std::string key = "sk-test-";
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) key.push_back(hex[rd() % 16]);
  return key;
}

// posix_spawn with stdout and stderr sent to `log` (or inherited when empty).
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!log.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

}  // namespace

std::string FeedSimPath() { return IOCWALL_FEEDSIM_PATH; }

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/iocwall-feeds-XXXXXX";
  if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& name, const std::string& content, int mode) const {
  const std::string p = path_ + "/" + name;
  unlink(p.c_str());
  const int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    const ssize_t n = write(fd, content.data(), content.size());
    (void)n;
    fchmod(fd, static_cast<mode_t>(mode));
    close(fd);
  }
  return p;
}

int RunProgram(const std::vector<std::string>& argv, std::string* output) {
  TempDir dir;
  const std::string log = dir.path() + "/out";
  const pid_t pid = Spawn(argv, log);
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (output != nullptr) *output = ReadFile(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

FeedSim::FeedSim(const std::vector<std::string>& extra_args) : key_(RandomKey()) {
  dir_.Write("api_key", key_ + "\n");
  if (RunProgram({FeedSimPath(), "gen-ca", "--out", dir_.path() + "/ca"}) != 0 ||
      RunProgram({FeedSimPath(), "gen-ca", "--out", dir_.path() + "/other-ca"}) != 0) {
    error_ = "gen-ca failed";
    return;
  }
  const std::string port_file = dir_.path() + "/ports.json";
  std::vector<std::string> argv = {FeedSimPath(),
                                   "--port",
                                   "0",
                                   "--tls-port",
                                   "0",
                                   "--tls-dir",
                                   dir_.path() + "/ca",
                                   "--api-key-file",
                                   key_file(),
                                   "--request-log",
                                   dir_.path() + "/requests.jsonl",
                                   "--port-file",
                                   port_file};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = Spawn(argv, dir_.path() + "/sim.out");
  if (pid_ < 0) {
    error_ = "cannot start " + FeedSimPath();
    return;
  }
  for (int i = 0; i < 1000; ++i) {  // up to 10 s on a loaded machine
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "the simulator exited: " + ProcessOutput();
      return;
    }
    const std::string ports = ReadFile(port_file);
    if (!ports.empty()) {
      const nlohmann::json j = nlohmann::json::parse(ports, nullptr, false);
      if (j.is_object()) {
        http_port_ = j.value("http", -1);
        https_port_ = j.value("https", -1);
        return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = "the simulator did not start within 10 s";
}

FeedSim::~FeedSim() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {  // a slow fault may hold a worker for a while
      if (waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
}

std::string FeedSim::http_url() const {
  return "http://127.0.0.1:" + std::to_string(http_port_) + "/api";
}

std::string FeedSim::https_url() const {
  return "https://127.0.0.1:" + std::to_string(https_port_) + "/api";
}

bool FeedSim::Control(const std::string& method, const std::string& path, const std::string& body) {
  httplib::Client client("127.0.0.1", http_port_);
  const auto res =
      method == "DELETE" ? client.Delete(path) : client.Post(path, body, "application/json");
  return res && res->status == 200;
}

bool FeedSim::AddFault(const nlohmann::json& fault) {
  return Control("POST", "/_sim/fault", fault.dump());
}

bool FeedSim::ClearFaults() { return Control("DELETE", "/_sim/fault", ""); }

bool FeedSim::SetClockOffset(int64_t seconds) {
  return Control("POST", "/_sim/clock", nlohmann::json{{"offset_seconds", seconds}}.dump());
}

nlohmann::json FeedSim::Stats() {
  httplib::Client client("127.0.0.1", http_port_);
  const auto res = client.Get("/_sim/stats");
  if (!res || res->status != 200) return nullptr;
  return nlohmann::json::parse(res->body, nullptr, false);
}

int FeedSim::RawGet(const std::string& target, std::string* body) {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_bearer_token_auth(key_);
  client.set_url_encode(false);  // the target goes out exactly as the test wrote it
  const auto res = client.Get(target);
  if (!res) return -1;
  if (body != nullptr) *body = res->body;
  return res->status;
}

bool FeedSim::Write(const std::string& collection, const std::string& what,
                    const nlohmann::json& body) {
  httplib::Client client("127.0.0.1", http_port_);
  client.set_basic_auth("iocwall-test", key_);
  const auto res =
      client.Post("/api/v2/inthreat/ioc-collections/" + collection + "/indicators/" + what,
                  body.dump(), "application/json");
  return res && res->status >= 200 && res->status < 300;
}

bool FeedSim::AddIndicators(const std::string& collection, const std::vector<std::string>& values,
                            int64_t valid_until) {
  // The API takes one observable type per request.
  std::string v4, v6;
  for (const std::string& v : values) (v.find(':') == std::string::npos ? v4 : v6) += v + "\n";
  for (const auto& [format, list] :
       {std::pair{"ipv4-addr.value", &v4}, std::pair{"ipv6-addr.value", &v6}}) {
    if (list->empty()) continue;
    nlohmann::json body{{"format", format}, {"indicators", *list}};
    if (valid_until != 0) body["valid_until"] = feedsim::FormatTime(valid_until);
    if (!Write(collection, "text", body)) return false;
  }
  return true;
}

bool FeedSim::RevokeIndicators(const std::string& collection,
                               const std::vector<std::string>& values) {
  std::string list;
  for (const std::string& v : values) list += v + "\n";
  return Write(collection, "revoke", nlohmann::json{{"indicators", list}});
}

std::vector<nlohmann::json> FeedSim::Requests() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(RawLog());
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.push_back(nlohmann::json::parse(line, nullptr, false));
  }
  return out;
}

std::vector<nlohmann::json> FeedSim::RequestsSince(size_t start) const {
  std::vector<nlohmann::json> all = Requests();
  all.erase(all.begin(), all.begin() + static_cast<long>(std::min(start, all.size())));
  return all;
}

SekoiaOptions FeedSim::ClientOptions(const std::string& collection, bool https) const {
  SekoiaOptions o;
  o.url = https ? https_url() : http_url();
  o.allow_http = !https;
  o.collection_id = collection;
  o.api_key_file = key_file();
  o.ca_file = ca_file();
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.request_timeout = std::chrono::milliseconds(10000);
  return o;
}

std::string FeedSim::RawLog() const { return ReadFile(dir_.path() + "/requests.jsonl"); }

std::string FeedSim::ProcessOutput() const { return ReadFile(dir_.path() + "/sim.out"); }

int64_t FakeClock::NowUnix() {
  return static_cast<int64_t>(time(nullptr)) +
         std::chrono::duration_cast<std::chrono::seconds>(slept_).count();
}

void FakeClock::SleepFor(std::chrono::milliseconds d) {
  sleeps.push_back(d);
  slept_ += d;
  now_ += d;
}

std::chrono::milliseconds FakeClock::total_slept() const { return slept_; }

}  // namespace iocwall::testing
