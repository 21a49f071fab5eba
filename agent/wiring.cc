#include "agent/wiring.h"

#include "feeds/file_source.h"
#include "feeds/secret_file.h"
#include "feeds/sekoia_source.h"

namespace iocwall {
namespace {

SekoiaOptions OptionsFor(const Config& c, const std::string& id) {
  SekoiaOptions o;
  o.url = c.api.url;
  o.collection_id = id;
  o.api_key_file = c.api.api_key_file;
  o.auth = c.api.auth == "basic" ? SekoiaAuth::kBasic : SekoiaAuth::kBearer;
  o.format = c.api.format == "json" ? SekoiaFormat::kJson : SekoiaFormat::kText;
  o.ca_file = c.api.ca_file;
  o.proxy = c.api.proxy.value_or("");
  o.allow_http = c.api.allow_http;
  o.connect_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.api.connect_timeout);
  o.request_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.api.timeout);
  o.fetch_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(c.api.fetch_timeout);
  o.max_body_bytes = c.api.max_body;
  o.backoff.max_requests_per_second = c.api.rate_limit;
  return o;
}

}  // namespace

std::vector<std::unique_ptr<Source>> MakeSources(const Config& c, Clock* clock) {
  std::vector<std::unique_ptr<Source>> out;
  for (const auto& id : c.collections) {
    out.push_back(std::make_unique<SekoiaSource>(OptionsFor(c, id), clock));
  }
  for (const auto& path : c.files) {
    FileSourceOptions o;
    o.path = path;
    out.push_back(std::make_unique<FileSource>(o));
  }
  return out;
}

HostInfoOptions HostOptionsFor(const Config& c) {
  HostInfoOptions o;
  o.connected_networks = c.allow_connected_networks;
  o.min_len_v4 = c.sync.min_prefix_v4;
  o.min_len_v6 = c.sync.min_prefix_v6;
  return o;
}

Status CheckConfig(const Config& c) {
  Status s = Validate(c);
  if (!s.ok()) return s;
  for (const auto& id : c.collections) {
    s = OptionsFor(c, id).Validate();
    if (!s.ok()) return s.Wrap("configuration " + c.path + ": collection " + id);
  }
  if (!c.collections.empty()) {
    Secret key;
    s = ReadSecretFile(c.api.api_key_file, &key);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace iocwall
