#include "control/grpc_convert.hpp"

#include <gtest/gtest.h>

#include "control/grpc_status.hpp"

namespace pspgw::control {
namespace {

psp_gateway::TunnelParameters good_params() {
  psp_gateway::TunnelParameters p;
  p.set_mac_addr("02:00:00:00:00:0B");
  p.set_ip_addr("2001:db8::2");
  p.set_psp_version(1);
  p.set_spi(0x80000005);
  p.set_encryption_key(std::string(32, 'k'));
  p.set_virt_cookie(0x778899aabbccddeeULL);
  p.set_encap_type(6);
  return p;
}

std::string error_of(const psp_gateway::TunnelParameters& p) {
  auto r = grpc_convert::from_proto(p, "tunnels[0].reverse_params");
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code, ControlError::kInvalidArgument);
  return r.error().message;
}

TEST(GrpcConvert, TunnelParametersRoundTrip) {
  auto r = grpc_convert::from_proto(good_params(), "p");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->spi, 0x80000005u);
  EXPECT_EQ(r->version(), psp::PspVersion::kAesGcm256);
  EXPECT_EQ(r->outer_ip.to_string(), "2001:db8::2");
  psp_gateway::TunnelParameters back;
  grpc_convert::to_proto(*r, &back);
  EXPECT_EQ(back.SerializeAsString(), good_params().SerializeAsString());
}

TEST(GrpcConvert, EveryTunnelParametersFieldIsValidated) {
  auto p = good_params();
  p.set_mac_addr("02:00:00:00:00");
  EXPECT_EQ(error_of(p), "tunnels[0].reverse_params.mac_addr: '02:00:00:00:00' is not a MAC address");
  p = good_params();
  p.set_ip_addr("2001:db8::zz");
  EXPECT_EQ(error_of(p), "tunnels[0].reverse_params.ip_addr: '2001:db8::zz' is not an IP address");
  p = good_params();
  p.set_encap_type(4);
  EXPECT_EQ(error_of(p), "tunnels[0].reverse_params.encap_type: 4 does not match ip_addr 2001:db8::2");
  p = good_params();
  p.set_psp_version(4);
  EXPECT_EQ(
      error_of(p),
      "tunnels[0].reverse_params.psp_version: 4 is not 0 (AES-GCM-128), 1 (AES-GCM-256), 2 (AES-GMAC-128) "
      "or 3 (AES-GMAC-256)");
  p = good_params();
  p.set_psp_version(3);  // GMAC-256: a 32-byte key like version 1
  EXPECT_TRUE(grpc_convert::from_proto(p, "p").ok());
  p.set_psp_version(2);
  EXPECT_EQ(error_of(p), "tunnels[0].reverse_params.encryption_key: 32 bytes, version 2 needs 16");
  p = good_params();
  p.set_encryption_key(std::string(16, 'k'));
  EXPECT_EQ(error_of(p), "tunnels[0].reverse_params.encryption_key: 16 bytes, version 1 needs 32");
  p.set_psp_version(0);
  EXPECT_TRUE(grpc_convert::from_proto(p, "p").ok());
  p = good_params();
  p.set_spi(0x80000000);
  EXPECT_EQ(error_of(p), "tunnels[0].reverse_params.spi: SPI with zero low 31 bits is reserved");
  p = good_params();
  p.set_encap_type(0);  // older DOCA releases leave it unset: the address decides
  EXPECT_TRUE(grpc_convert::from_proto(p, "p").ok());
}

TEST(GrpcConvert, TunnelRequestChecksInnerType) {
  psp_gateway::MultiTunnelRequest r;
  auto* t = r.add_tunnels();
  t->set_virt_src_ip("10.0.0.1");
  t->set_virt_dst_ip("10.0.1.1");
  t->set_inner_type(6);
  auto bad = grpc_convert::from_proto(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "tunnels[0].inner_type: 6 does not match 10.0.0.1");
  t->set_inner_type(4);
  t->set_virt_dst_ip("fd00::1");
  bad = grpc_convert::from_proto(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "tunnels[0]: virt_src_ip and virt_dst_ip are of different families");
  t->set_virt_dst_ip("10.0.1.1");
  *t->mutable_reverse_params() = good_params();
  t->mutable_reverse_params()->set_mac_addr("x");
  bad = grpc_convert::from_proto(r);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "tunnels[0].reverse_params.mac_addr: 'x' is not a MAC address");
  t->mutable_reverse_params()->set_mac_addr("02:00:00:00:00:0b");
  auto ok = grpc_convert::from_proto(r);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok->tunnels[0].reverse_params.has_value());
}

TEST(GrpcConvert, WipeKeysZeroesKeyBytes) {
  psp_gateway::MultiTunnelResponse r;
  *r.add_tunnels_params() = good_params();
  grpc_convert::wipe_keys(&r);
  EXPECT_TRUE(r.tunnels_params(0).encryption_key().empty());
}

TEST(GrpcStatus, EveryControlErrorHasItsOwnCode) {
  EXPECT_EQ(to_grpc_code(ControlError::kInvalidArgument), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(to_grpc_code(ControlError::kResourceExhausted), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(to_grpc_code(ControlError::kInternal), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(to_grpc_code(ControlError::kPermissionDenied), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(to_grpc_code(ControlError::kUnimplemented), grpc::StatusCode::UNIMPLEMENTED);
  // Round trip through the client-side mapping.
  for (int i = 0; i <= static_cast<int>(ControlError::kInternal); ++i) {
    const auto e = static_cast<ControlError>(i);
    EXPECT_EQ(from_grpc_status(to_grpc_status(Error{e, "m"}), "peer").code, e) << to_string(e);
  }
  EXPECT_EQ(from_grpc_status(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"), "10.0.0.2:3000").message,
            "10.0.0.2:3000: down");
}

}  // namespace
}  // namespace pspgw::control
