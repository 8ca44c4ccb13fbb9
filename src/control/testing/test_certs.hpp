// Throwaway PKI for tests of mutual TLS: a CA and the certificates it signs, made with the OpenSSL API at
// test time (EC P-256, valid from an hour ago for 30 days), so no key is ever committed.
#pragma once

#include <string>
#include <vector>

#include "control/tls.hpp"

namespace pspgw::control::testing {

struct TestCert {
  std::string cert_pem;
  std::string key_pem;
};

class TestCa {
 public:
  explicit TestCa(const std::string& name = "psp-gateway test CA");

  const std::string& cert_pem() const { return ca_.cert_pem; }
  // A certificate for both TLS client and server use. sans: "IP:127.0.0.1", "DNS:peer.example".
  TestCert issue(const std::string& common_name, const std::vector<std::string>& sans) const;
  // cert + key + this CA, as load_tls would return them.
  TlsMaterial material(const TestCert& cert) const;
  // Writes DIR/NAME.crt, DIR/NAME.key and DIR/NAME-ca.crt; returns their paths.
  TlsFiles write(const std::string& dir, const std::string& name, const TestCert& cert) const;

 private:
  TestCert ca_;
};

}  // namespace pspgw::control::testing
