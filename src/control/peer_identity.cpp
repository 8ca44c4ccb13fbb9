#include "control/peer_identity.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

namespace pspgw::control {

namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// ::ffff:a.b.c.d -> a.b.c.d: a dual-stack listener reports IPv4 clients this way.
net::IpAddr unmap(const net::IpAddr& a) {
  static constexpr std::array<uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!a.is_v6() || !std::equal(kMapped.begin(), kMapped.end(), a.bytes.begin())) return a;
  return net::IpAddr::v4(std::span<const uint8_t, 4>(a.bytes.data() + 12, 4));
}

CResult<std::vector<net::IpAddr>> resolve_name(const std::string& name) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &list); rc != 0) {
    return fail(ControlError::kUnavailable, "cannot resolve peer host " + name + ": " + ::gai_strerror(rc));
  }
  std::vector<net::IpAddr> out;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ai_addr);  // NOLINT: sockaddr API
      std::array<uint8_t, 4> b{};
      std::memcpy(b.data(), &sin->sin_addr, 4);
      out.push_back(net::IpAddr::v4(b));
    } else if (a->ai_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ai_addr);  // NOLINT: sockaddr API
      std::array<uint8_t, 16> b{};
      std::memcpy(b.data(), &sin6->sin6_addr, 16);
      out.push_back(unmap(net::IpAddr::v6(b)));
    }
  }
  ::freeaddrinfo(list);
  return out;
}

}  // namespace

bool Caller::may_act_for(PeerIndex p) const {
  return std::find(peers.begin(), peers.end(), p) != peers.end();
}

PeerDirectory::PeerDirectory(std::vector<std::string> hosts) {
  for (std::string& h : hosts) {
    Host host{std::move(h), {}};
    if (auto a = net::IpAddr::parse(host.name)) host.addresses.push_back(unmap(*a));
    hosts_.push_back(std::move(host));
  }
}

CStatus PeerDirectory::resolve() {
  for (Host& h : hosts_) {
    if (!h.addresses.empty() || h.name.empty()) continue;  // an IP literal, or a removed peer's slot
    auto addresses = resolve_name(h.name);
    if (!addresses) return Err{addresses.error()};
    h.addresses = std::move(addresses.value());
  }
  return {};
}

Caller PeerDirectory::by_names(std::span<const std::string> names) const {
  Caller c;
  for (PeerIndex i = 0; i < hosts_.size(); ++i) {
    const Host& h = hosts_[i];
    const auto host_ip = net::IpAddr::parse(h.name);
    for (const std::string& n : names) {
      const auto san_ip = net::IpAddr::parse(n);
      const bool match =
          host_ip ? san_ip && unmap(*san_ip) == unmap(*host_ip) : !san_ip && same_name(n, h.name);
      if (!match) continue;
      c.peers.push_back(i);
      if (c.proof.empty()) c.proof = "certificate " + n;
      break;
    }
  }
  return c;
}

Caller PeerDirectory::by_address(const net::IpAddr& source) const {
  Caller c;
  const net::IpAddr src = unmap(source);
  for (PeerIndex i = 0; i < hosts_.size(); ++i) {
    const auto& a = hosts_[i].addresses;
    if (std::find(a.begin(), a.end(), src) != a.end()) c.peers.push_back(i);
  }
  c.proof = "source " + src.to_string();
  return c;
}

namespace {

// gRPC percent-encodes its peer URIs ("ipv6:%5Bfd00::1%5D:3000"); undo that.
std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    unsigned v = 0;
    if (text[i] == '%' && i + 2 < text.size() &&
        std::from_chars(text.data() + i + 1, text.data() + i + 3, v, 16).ptr == text.data() + i + 3) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<net::IpAddr> parse_grpc_peer(std::string_view encoded) {
  const std::string decoded = percent_decode(encoded);
  const std::string_view peer = decoded;
  std::string_view rest;
  if (peer.starts_with("ipv4:")) {
    rest = peer.substr(5);
    rest = rest.substr(0, rest.rfind(':'));
  } else if (peer.starts_with("ipv6:[")) {
    rest = peer.substr(6);
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    rest = rest.substr(0, close);
    if (const auto zone = rest.find('%'); zone != std::string_view::npos) rest = rest.substr(0, zone);
  } else {
    return std::nullopt;
  }
  auto ip = net::IpAddr::parse(rest);
  if (!ip) return std::nullopt;
  return unmap(*ip);
}

}  // namespace pspgw::control
