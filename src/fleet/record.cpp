#include "fleet/record.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace pspgw::fleet {

namespace {

using nlohmann::json;

struct Bad {
  std::string message;
};

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Bad{path + ": " + what};
}

const json& field(const json& o, const char* key) {
  const auto it = o.find(key);
  if (it == o.end()) bad(key, "missing");
  return *it;
}

std::string string_field(const json& o, const char* key, bool required = true) {
  const auto it = o.find(key);
  if (it == o.end()) {
    if (required) bad(key, "missing");
    return {};
  }
  if (!it->is_string()) bad(key, "not a string");
  return it->get<std::string>();
}

void only_keys(const json& o, const std::string& path, std::initializer_list<std::string_view> keys) {
  for (const auto& [k, v] : o.items()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) bad(path + k, "unknown key");
  }
}

net::IpAddr ip_of(const json& v, const std::string& path) {
  if (!v.is_string()) bad(path, "not a string");
  auto ip = net::IpAddr::parse(v.get_ref<const std::string&>());
  if (!ip) bad(path, "'" + v.get<std::string>() + "' is not an IP address");
  return *ip;
}

// "host:port", "[v6]:port": the port is required (a record names a listening server exactly).
bool valid_grpc_address(std::string_view a) {
  const auto colon = a.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == a.size()) return false;
  const std::string_view port = a.substr(colon + 1);
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  if (std::stoul(std::string(port)) > 65535) return false;
  const std::string_view host = a.substr(0, colon);
  if (host.front() == '[') return host.back() == ']' && net::IpAddr::parse(host.substr(1, host.size() - 2));
  return valid_host_name(host);
}

PortVips port_of(const json& p, const std::string& path, std::size_t& vip_count) {
  if (!p.is_object()) bad(path, "not an object");
  only_keys(p, path + ".", {"name", "vips"});
  PortVips out;
  if (p.contains("name")) {
    if (!p.at("name").is_string()) bad(path + ".name", "not a string");
    out.name = p.at("name").get<std::string>();
  }
  const json& vips = field(p, "vips");
  if (!vips.is_array()) bad(path + ".vips", "not an array");
  vip_count += vips.size();
  if (vip_count > kMaxVipsPerRecord)
    bad(path + ".vips", "more than " + std::to_string(kMaxVipsPerRecord) + " VIPs");
  out.vips.reserve(vips.size());
  for (std::size_t i = 0; i < vips.size(); ++i)
    out.vips.push_back(ip_of(vips[i], path + ".vips[" + std::to_string(i) + "]"));
  return out;
}

HostRecord record_of(const json& j) {
  if (!j.is_object()) bad("record", "not a JSON object");
  only_keys(j, "", {"host", "grpc-address", "pip", "identity", "ports"});
  HostRecord r;
  r.host = string_field(j, "host");
  if (!valid_host_name(r.host)) bad("host", "'" + r.host + "' is not a host name ([A-Za-z0-9._-], 1..253)");
  r.grpc_address = string_field(j, "grpc-address");
  if (!valid_grpc_address(r.grpc_address)) bad("grpc-address", "'" + r.grpc_address + "' is not host:port");
  r.pip = ip_of(field(j, "pip"), "pip");
  r.identity = string_field(j, "identity", false);
  const json& ports = field(j, "ports");
  if (!ports.is_array()) bad("ports", "not an array");
  std::size_t count = 0;
  for (std::size_t i = 0; i < ports.size(); ++i)
    r.ports.push_back(port_of(ports[i], "ports[" + std::to_string(i) + "]", count));
  return r;
}

}  // namespace

std::vector<net::IpAddr> HostRecord::vips() const {
  std::vector<net::IpAddr> out;
  for (const auto& p : ports) out.insert(out.end(), p.vips.begin(), p.vips.end());
  return out;
}

std::string HostRecord::effective_identity() const {
  if (!identity.empty()) return identity;
  const std::string_view a = grpc_address;
  std::string_view h = a.substr(0, a.rfind(':'));
  if (h.starts_with('[') && h.ends_with(']')) h = h.substr(1, h.size() - 2);
  return std::string(h);
}

FResult<HostRecord> decode_record(std::string_view text) {
  if (text.size() > kMaxRecordBytes)
    return fail(FleetError::kBadRecord, "record of " + std::to_string(text.size()) + " bytes: too large");
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail(FleetError::kBadRecord, "record: not JSON");
  try {
    return record_of(j);
  } catch (const Bad& b) {
    return fail(FleetError::kBadRecord, b.message);
  } catch (const json::exception& e) {
    return fail(FleetError::kBadRecord, e.what());
  }
}

std::string encode_record(const HostRecord& r) {
  json ports = json::array();
  for (const auto& p : r.ports) {
    json vips = json::array();
    for (const auto& v : p.vips) vips.push_back(v.to_string());
    ports.push_back({{"name", p.name}, {"vips", std::move(vips)}});
  }
  json j = {{"host", r.host}, {"grpc-address", r.grpc_address}, {"pip", r.pip.to_string()}, {"ports", ports}};
  if (!r.identity.empty()) j["identity"] = r.identity;
  return j.dump();
}

bool valid_host_name(std::string_view host) {
  return !host.empty() && host.size() <= kMaxHostNameBytes && host != "." && host != ".." &&
         std::all_of(host.begin(), host.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '-' || c == '_';
         });
}

std::string normalise_prefix(std::string_view prefix) {
  std::string p(prefix);
  if (p.empty() || p.back() != '/') p.push_back('/');
  return p;
}

std::string hosts_prefix(std::string_view prefix) {
  return normalise_prefix(prefix) + "hosts/";
}

std::string host_key(std::string_view prefix, std::string_view host) {
  return hosts_prefix(prefix) + std::string(host);
}

std::string policy_key(std::string_view prefix) {
  return normalise_prefix(prefix) + "policy";
}

std::optional<std::string> host_of_key(std::string_view prefix, std::string_view key) {
  const std::string hp = hosts_prefix(prefix);
  if (!key.starts_with(hp)) return std::nullopt;
  std::string host(key.substr(hp.size()));
  if (!valid_host_name(host)) return std::nullopt;
  return host;
}

}  // namespace pspgw::fleet
