// proto <-> core conversion for psp_gateway.proto (spec §2). Every field is validated here, so the
// policy core only sees well-formed values: MAC and IP text, encap_type/inner_type against the address
// family, psp_version 0 or 1, key length 16 (v0) / 32 (v1), SPI with non-zero low 31 bits.
// Errors are kInvalidArgument and name the field ("tunnels[2].reverse_params.ip_addr").
#pragma once

#include <string>

#include "control/error.hpp"
#include "control/messages.hpp"
#include "psp_gateway.pb.h"

namespace pspgw::control::grpc_convert {

CResult<TunnelParams> from_proto(const psp_gateway::TunnelParameters& p, const std::string& where);
CResult<TunnelRequest> from_proto(const psp_gateway::SingleTunnelRequest& t, const std::string& where);
CResult<MultiTunnelRequest> from_proto(const psp_gateway::MultiTunnelRequest& r);
CResult<MultiTunnelResponse> from_proto(const psp_gateway::MultiTunnelResponse& r);

void to_proto(const TunnelParams& p, psp_gateway::TunnelParameters* out);
void to_proto(const MultiTunnelRequest& r, psp_gateway::MultiTunnelRequest* out);
void to_proto(const MultiTunnelResponse& r, psp_gateway::MultiTunnelResponse* out);

// Key bytes in a proto are plain std::string: zero them once the message is no longer needed.
void wipe_keys(psp_gateway::MultiTunnelRequest* r);
void wipe_keys(psp_gateway::MultiTunnelResponse* r);

}  // namespace pspgw::control::grpc_convert
