#include "control/testing/test_certs.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>

namespace pspgw::control::testing {

namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
}

std::string pem_of(const std::function<int(BIO*)>& write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(write(bio.get()) == 1, "PEM write");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(google-runtime-int): OpenSSL's type
  return {data, static_cast<std::size_t>(n)};
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, "extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer/issuer_key null: self-signed (the CA).
TestCert make(const std::string& cn, const std::vector<std::string>& sans, X509* issuer,
              EVP_PKEY* issuer_key) {
  static std::atomic<long> serial{1};  // NOLINT(google-runtime-int): ASN1_INTEGER_set's type
  KeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "key generation");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                             -1, 0);
  const bool ca = issuer == nullptr;
  X509* signer = ca ? cert.get() : issuer;
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  add_ext(cert.get(), signer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  add_ext(cert.get(), signer, NID_key_usage,
          ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment");
  add_ext(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (!ca) {
    add_ext(cert.get(), signer, NID_authority_key_identifier, "keyid");
    add_ext(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  std::string alt;
  for (const auto& s : sans) alt += (alt.empty() ? "" : ",") + s;
  if (!alt.empty()) add_ext(cert.get(), signer, NID_subject_alt_name, alt);
  check(X509_sign(cert.get(), ca ? key.get() : issuer_key, EVP_sha256()) > 0, "signing");
  return TestCert{pem_of([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }), pem_of([&](BIO* b) {
                    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
                  })};
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  check(out.good(), "writing a file");
}

}  // namespace

TestCa::TestCa(const std::string& name) : ca_(make(name, {}, nullptr, nullptr)) {}

TestCert TestCa::issue(const std::string& common_name, const std::vector<std::string>& sans) const {
  BioPtr cert_bio(BIO_new_mem_buf(ca_.cert_pem.data(), static_cast<int>(ca_.cert_pem.size())));
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  BioPtr key_bio(BIO_new_mem_buf(ca_.key_pem.data(), static_cast<int>(ca_.key_pem.size())));
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  check(cert && key, "reading the CA");
  return make(common_name, sans, cert.get(), key.get());
}

TlsMaterial TestCa::material(const TestCert& cert) const {
  return TlsMaterial(cert.cert_pem, cert.key_pem, ca_.cert_pem);
}

TlsFiles TestCa::write(const std::string& dir, const std::string& name, const TestCert& cert) const {
  TlsFiles f{dir + "/" + name + ".crt", dir + "/" + name + ".key", dir + "/" + name + "-ca.crt"};
  write_file(f.cert, cert.cert_pem);
  write_file(f.key, cert.key_pem);
  write_file(f.ca, ca_.cert_pem);
  return f;
}

}  // namespace pspgw::control::testing
