// Wire layout of psp_gateway.proto (spec §2): a renumbered or retyped field breaks peering with DOCA,
// so the encoded bytes and the descriptors are pinned here.
#include <gtest/gtest.h>

#include <string>

#include "base/hex.hpp"
#include "psp_gateway.grpc.pb.h"
#include "psp_gateway.pb.h"

namespace pspgw::control {
namespace {

std::string hex_of(const google::protobuf::MessageLite& m) {
  const std::string bytes = m.SerializeAsString();
  return to_hex({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}

TEST(ProtoWire, MultiTunnelRequestLayout) {
  psp_gateway::MultiTunnelRequest r;
  r.set_request_id(1);
  r.add_psp_versions_accepted(1);
  r.add_psp_versions_accepted(0);
  auto* t = r.add_tunnels();
  t->set_virt_src_ip("a");
  t->set_virt_dst_ip("b");
  t->set_inner_type(4);
  auto* p = t->mutable_reverse_params();
  p->set_mac_addr("m");
  p->set_ip_addr("i");
  p->set_psp_version(1);
  p->set_spi(2);
  p->set_encryption_key(std::string(1, '\x01'));
  p->set_virt_cookie(3);
  p->set_encap_type(6);
  // 08 01            request_id = 1                     (field 1, varint)
  // 12 02 01 00      psp_versions_accepted = [1, 0]     (field 2, packed varints)
  // 1a 1b ...        tunnels[0], 27 bytes               (field 3, message)
  //   0a 01 61 / 12 01 62 / 18 04     virt_src_ip, virt_dst_ip, inner_type
  //   22 11 ...      reverse_params, 17 bytes          (field 4, message)
  //     0a 01 6d / 12 01 69 / 18 01 / 20 02 / 2a 01 01 / 30 03 / 38 06
  EXPECT_EQ(hex_of(r),
            "080112020100"
            "1a1b"
            "0a0161120162"
            "1804"
            "2211"
            "0a016d120169180120022a0101"
            "30033806");
}

TEST(ProtoWire, ResponseAndRotationLayout) {
  psp_gateway::MultiTunnelResponse resp;
  resp.set_request_id(5);
  resp.add_tunnels_params()->set_spi(7);
  EXPECT_EQ(hex_of(resp),
            "0805"
            "1202"
            "2007");  // request_id; tunnels_params (field 2) { spi (field 4) }

  psp_gateway::KeyRotationRequest rot;
  rot.set_request_id(5);
  rot.set_issue_new_keys(true);
  EXPECT_EQ(hex_of(rot), "08051001");
  psp_gateway::KeyRotationResponse rot_resp;
  rot_resp.set_request_id(5);
  EXPECT_EQ(hex_of(rot_resp), "0805");
}

TEST(ProtoWire, FieldTypesAndServiceNamesMatchDoca) {
  using FD = google::protobuf::FieldDescriptor;
  const auto* tp = psp_gateway::TunnelParameters::descriptor();
  EXPECT_EQ(tp->full_name(), "psp_gateway.TunnelParameters");
  const std::pair<const char*, FD::Type> fields[] = {
      {"mac_addr", FD::TYPE_STRING},  {"ip_addr", FD::TYPE_STRING},       {"psp_version", FD::TYPE_UINT32},
      {"spi", FD::TYPE_UINT32},       {"encryption_key", FD::TYPE_BYTES}, {"virt_cookie", FD::TYPE_UINT64},
      {"encap_type", FD::TYPE_UINT32}};
  for (int i = 0; i < 7; ++i) {
    const FD* f = tp->FindFieldByName(fields[i].first);
    ASSERT_NE(f, nullptr) << fields[i].first;
    EXPECT_EQ(f->number(), i + 1) << fields[i].first;
    EXPECT_EQ(f->type(), fields[i].second) << fields[i].first;
  }
  EXPECT_EQ(tp->field_count(), 7);
  const auto* mtr = psp_gateway::MultiTunnelRequest::descriptor();
  EXPECT_EQ(mtr->FindFieldByNumber(1)->type(), FD::TYPE_UINT64);
  EXPECT_TRUE(mtr->FindFieldByNumber(2)->is_repeated());
  EXPECT_EQ(mtr->FindFieldByNumber(2)->type(), FD::TYPE_UINT32);
  EXPECT_EQ(psp_gateway::SingleTunnelRequest::descriptor()->FindFieldByNumber(3)->type(), FD::TYPE_UINT32);
  EXPECT_EQ(psp_gateway::KeyRotationRequest::descriptor()->FindFieldByNumber(2)->type(), FD::TYPE_BOOL);

  const auto* svc = psp_gateway::MultiTunnelRequest::descriptor()->file()->FindServiceByName("PSP_Gateway");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(std::string(psp_gateway::PSP_Gateway::service_full_name()), "psp_gateway.PSP_Gateway");
  ASSERT_NE(svc->FindMethodByName("RequestMultipleTunnelParams"), nullptr);
  EXPECT_EQ(svc->FindMethodByName("RequestMultipleTunnelParams")->input_type(), mtr);
  ASSERT_NE(svc->FindMethodByName("RequestKeyRotation"), nullptr);
  // DOCA's two methods, then psp-gateway's own CloseTunnels (a DOCA server answers it UNIMPLEMENTED; the
  // methods DOCA knows keep their names, types and order).
  EXPECT_EQ(svc->method(0)->name(), "RequestMultipleTunnelParams");
  EXPECT_EQ(svc->method(1)->name(), "RequestKeyRotation");
  ASSERT_EQ(svc->method_count(), 3);
  EXPECT_EQ(svc->method(2)->name(), "CloseTunnels");
}

}  // namespace
}  // namespace pspgw::control
