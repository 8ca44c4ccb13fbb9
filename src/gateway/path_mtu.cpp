#include "gateway/path_mtu.hpp"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>

#include "base/unique_fd.hpp"
#include "net/headers.hpp"
#include "psp/header.hpp"

namespace pspgw::gateway {
namespace {

bool holds(const ifaddrs& ifa, const net::IpAddr& local) {
  if (ifa.ifa_addr == nullptr) return false;
  if (local.is_v4() && ifa.ifa_addr->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(ifa.ifa_addr);
    return std::memcmp(&sin->sin_addr, local.bytes.data(), 4) == 0;
  }
  if (local.is_v6() && ifa.ifa_addr->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(ifa.ifa_addr);
    return std::memcmp(&sin6->sin6_addr, local.bytes.data(), 16) == 0;
  }
  return false;
}

std::optional<uint32_t> mtu_of(const char* ifname) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid() || std::strlen(ifname) >= IFNAMSIZ) return std::nullopt;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname, std::strlen(ifname));
  if (::ioctl(s.get(), SIOCGIFMTU, &ifr) != 0 || ifr.ifr_mtu <= 0) return std::nullopt;
  return static_cast<uint32_t>(ifr.ifr_mtu);
}

}  // namespace

uint32_t psp_overhead(psp::Mode mode, net::IpFamily outer, bool vc) {
  const uint32_t psp =
      sizeof(net::UdpHdr) + psp::kPspHeaderSize + (vc ? psp::kPspVcSize : 0) + psp::kPspIcvSize;
  if (mode == psp::Mode::kTransport) return psp;
  return psp + (outer == net::IpFamily::kV4 ? sizeof(net::Ipv4Hdr) : sizeof(net::Ipv6Hdr));
}

std::optional<uint32_t> interface_mtu_of(const net::IpAddr& local) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return std::nullopt;
  std::optional<uint32_t> mtu;
  for (const ifaddrs* a = list; a != nullptr && !mtu; a = a->ifa_next) {
    if (holds(*a, local)) mtu = mtu_of(a->ifa_name);
  }
  ::freeifaddrs(list);
  return mtu;
}

}  // namespace pspgw::gateway
