// Test helpers for the feed client: a simulator child process on loopback (ports picked by
// the simulator, so suites run in parallel), its test CA, its API key file and request log;
// and a fake clock that records the client's sleeps instead of sleeping.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/core/clock.h"

namespace iocwall::testing {

// A private directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes a file with the given mode; returns its path.
  std::string Write(const std::string& name, const std::string& content, int mode = 0600) const;

 private:
  std::string path_;
};

// Runs a program to completion; returns its exit status (-1 if it could not run).
int RunProgram(const std::vector<std::string>& argv, std::string* output = nullptr);

class FeedSim {
 public:
  // Starts iocwall-feedsim with HTTP and HTTPS on 127.0.0.1, a fresh key and CA (plus a second,
  // unrelated CA for "wrong CA" tests), and `extra_args` (collections, faults, ...).
  explicit FeedSim(const std::vector<std::string>& extra_args);
  ~FeedSim();
  FeedSim(const FeedSim&) = delete;
  FeedSim& operator=(const FeedSim&) = delete;

  bool ok() const { return pid_ > 0 && https_port_ > 0; }
  const std::string& error() const { return error_; }

  std::string http_url() const;   // "http://127.0.0.1:P/api"
  std::string https_url() const;  // "https://127.0.0.1:P/api"
  const std::string& key() const { return key_; }
  std::string key_file() const { return dir_.path() + "/api_key"; }
  std::string ca_file() const { return dir_.path() + "/ca/ca.pem"; }
  std::string wrong_ca_file() const { return dir_.path() + "/other-ca/ca.pem"; }
  const TempDir& dir() const { return dir_; }

  // Control endpoints (plain HTTP).
  bool AddFault(const nlohmann::json& fault);
  bool ClearFaults();
  bool SetClockOffset(int64_t seconds);

  // The request log, every line parsed.
  std::vector<nlohmann::json> Requests() const;
  std::string RawLog() const;         // request log text
  std::string ProcessOutput() const;  // the simulator's stdout and stderr

 private:
  bool Control(const std::string& method, const std::string& path, const std::string& body);

  TempDir dir_;
  std::string key_;
  pid_t pid_ = -1;
  int http_port_ = -1;
  int https_port_ = -1;
  std::string error_;
};

// Monotonic time moves only when the code under test sleeps; wall time is the real time plus
// what was slept (so expiry checks against the simulator's clock still hold).
class FakeClock : public Clock {
 public:
  int64_t NowUnix() override;
  std::chrono::steady_clock::time_point Now() override { return now_; }
  void SleepFor(std::chrono::milliseconds d) override;
  void Advance(std::chrono::milliseconds d) { now_ += d; }

  std::vector<std::chrono::milliseconds> sleeps;
  std::chrono::milliseconds total_slept() const;

 private:
  std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
  std::chrono::milliseconds slept_{0};
};

std::string FeedSimPath();

}  // namespace iocwall::testing
