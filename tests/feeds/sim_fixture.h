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

#include "core/clock.h"
#include "feeds/sekoia_source.h"

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
  nlohmann::json Stats();  // GET /_sim/stats; null on failure

  // GET of `target` ("/api/v2/...?..." sent as given, no encoding added) over plain HTTP with
  // the key as Bearer: the HTTP status, -1 when no answer came.
  int RawGet(const std::string& target, std::string* body = nullptr);

  // The collection write API (authenticated, plain HTTP): adds IP values (or re-adds them, which
  // updates their validity), valid until `valid_until` (0: the simulator's default validity);
  // revokes values. True when the simulator accepted every request.
  bool AddIndicators(const std::string& collection, const std::vector<std::string>& values,
                     int64_t valid_until = 0);
  bool RevokeIndicators(const std::string& collection, const std::vector<std::string>& values);

  // Client options for one of this simulator's collections: HTTPS trusting its CA (or plain
  // HTTP, allowed), its key, short timeouts.
  SekoiaOptions ClientOptions(const std::string& collection, bool https = true) const;

  // The request log, every line parsed; from line `start` on (an earlier Requests().size()).
  std::vector<nlohmann::json> Requests() const;
  std::vector<nlohmann::json> RequestsSince(size_t start) const;
  std::string RawLog() const;         // request log text
  std::string ProcessOutput() const;  // the simulator's stdout and stderr

 private:
  bool Control(const std::string& method, const std::string& path, const std::string& body);
  // POSTs body to /api/v2/inthreat/ioc-collections/{collection}/indicators/{what}.
  bool Write(const std::string& collection, const std::string& what, const nlohmann::json& body);

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
