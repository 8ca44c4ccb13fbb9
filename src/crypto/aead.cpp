// Backend factories: pick ipsec-mb where the CPU supports it, OpenSSL otherwise.
#include "crypto/aead.hpp"

namespace pspgw::crypto {

std::unique_ptr<AeadBackend> make_default_backend() {
  if (auto backend = make_ipsec_mb_backend()) return backend;
  return make_openssl_backend();
}

std::unique_ptr<AeadBackend> make_backend(std::string_view name) {
  if (name == "ipsec-mb") return make_ipsec_mb_backend();
  if (name == "openssl") return make_openssl_backend();
  if (name == "auto") return make_default_backend();
  return nullptr;
}

}  // namespace pspgw::crypto
