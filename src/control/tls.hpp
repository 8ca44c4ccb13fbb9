// Mutual TLS for the key exchange (--grpc-tls-cert / --grpc-tls-key / --grpc-tls-ca, or x-sw.grpc-tls).
// The files are read once, at start, and checked with OpenSSL there: an unreadable file, a file that is
// not PEM, a key that does not belong to the certificate or a certificate the CA did not sign fails at
// start with the file's name, not at the first RPC. Both sides use the same material: the server requires
// a client certificate signed by the CA; the client verifies the server against the same CA (gRPC checks
// that a subjectAltName names the host it dialled) and presents its own certificate.
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "control/error.hpp"

namespace pspgw::control {

struct TlsFiles {
  std::string cert;  // our certificate (chain), PEM
  std::string key;   // its private key, PEM, unencrypted
  std::string ca;    // the CA certificate(s) every peer's certificate must chain to, PEM

  bool any() const { return !cert.empty() || !key.empty() || !ca.empty(); }
  bool complete() const { return !cert.empty() && !key.empty() && !ca.empty(); }
};

// The PEM text of TlsFiles. The key text is wiped when this is destroyed (gRPC keeps its own copies
// inside its credentials objects, which it frees without wiping).
struct TlsMaterial {
  std::string cert_pem;
  std::string key_pem;
  std::string ca_pem;

  TlsMaterial() = default;
  TlsMaterial(std::string cert, std::string key, std::string ca)
      : cert_pem(std::move(cert)), key_pem(std::move(key)), ca_pem(std::move(ca)) {}
  TlsMaterial(TlsMaterial&&) noexcept = default;
  TlsMaterial& operator=(TlsMaterial&&) noexcept = default;
  TlsMaterial(const TlsMaterial&) = delete;
  TlsMaterial& operator=(const TlsMaterial&) = delete;
  ~TlsMaterial();
};

// Reads and checks the three files. kInvalidArgument naming the file on any failure.
CResult<TlsMaterial> load_tls(const TlsFiles& files);
// Checks PEM text already read; `files` only names the sources in messages.
CStatus check_tls(const TlsMaterial& material, const TlsFiles& files);

// Server: TLS 1.2+, a client certificate signed by the CA is required and verified.
std::shared_ptr<grpc::ServerCredentials> tls_server_credentials(const TlsMaterial& material);
// Client: verifies the server against the CA, presents our certificate.
std::shared_ptr<grpc::ChannelCredentials> tls_channel_credentials(const TlsMaterial& material);

}  // namespace pspgw::control
