#include "control/tls.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace pspgw::control {

namespace {

constexpr std::size_t kMaxPemBytes = 1 << 20;  // a certificate chain or key is a few KiB

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;

BioPtr bio_of(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string openssl_reason() {
  const unsigned long e = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (e == 0) return "no PEM data found";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

Err<Error> bad(const std::string& file, const std::string& what) {
  return fail(ControlError::kInvalidArgument, file + ": " + what);
}

CResult<std::string> read_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return bad(path, std::string("cannot read (") + flag + "): " + std::generic_category().message(errno));
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  if (s.size() > kMaxPemBytes) return bad(path, std::string("too large for a PEM file (") + flag + ")");
  return s;
}

// Never prompt for a passphrase: an encrypted key is an error at start.
int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return -1;
}

CResult<StorePtr> ca_store(const TlsMaterial& m, const TlsFiles& files) {
  StorePtr store(X509_STORE_new());
  BioPtr bio = bio_of(m.ca_pem);
  int count = 0;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr)) {
    X509_STORE_add_cert(store.get(), c);
    X509_free(c);
    ++count;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (count == 0) return bad(files.ca, "no PEM certificate in it (--grpc-tls-ca)");
  return store;
}

}  // namespace

TlsMaterial::~TlsMaterial() {
  if (!key_pem.empty()) OPENSSL_cleanse(key_pem.data(), key_pem.size());
}

CStatus check_tls(const TlsMaterial& m, const TlsFiles& files) {
  BioPtr cert_bio = bio_of(m.cert_pem);
  X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, no_passphrase, nullptr));
  if (!cert) return bad(files.cert, "not a PEM certificate (--grpc-tls-cert): " + openssl_reason());
  BioPtr key_bio = bio_of(m.key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!key) {
    return bad(files.key, "not an unencrypted PEM private key (--grpc-tls-key): " + openssl_reason());
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return bad(files.key, "this private key does not belong to the certificate " + files.cert);
  }
  auto store = ca_store(m, files);
  if (!store) return Err{store.error()};
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store->get(), cert.get(), nullptr);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int e = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return bad(files.cert,
               std::string("not signed by the CA in ") + files.ca + ": " + X509_verify_cert_error_string(e));
  }
  return {};
}

CResult<TlsMaterial> load_tls(const TlsFiles& files) {
  auto cert = read_file(files.cert, "--grpc-tls-cert");
  if (!cert) return Err{cert.error()};
  auto key = read_file(files.key, "--grpc-tls-key");
  if (!key) return Err{key.error()};
  auto ca = read_file(files.ca, "--grpc-tls-ca");
  if (!ca) return Err{ca.error()};
  TlsMaterial m(std::move(*cert), std::move(*key), std::move(*ca));
  if (auto ok = check_tls(m, files); !ok) return Err{ok.error()};
  return m;
}

std::shared_ptr<grpc::ServerCredentials> tls_server_credentials(const TlsMaterial& m) {
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = m.ca_pem;
  options.pem_key_cert_pairs.push_back({m.key_pem, m.cert_pem});
  auto creds = grpc::SslServerCredentials(options);
  OPENSSL_cleanse(options.pem_key_cert_pairs[0].private_key.data(),
                  options.pem_key_cert_pairs[0].private_key.size());
  return creds;
}

std::shared_ptr<grpc::ChannelCredentials> tls_channel_credentials(const TlsMaterial& m) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = m.ca_pem;
  options.pem_private_key = m.key_pem;
  options.pem_cert_chain = m.cert_pem;
  auto creds = grpc::SslCredentials(options);
  OPENSSL_cleanse(options.pem_private_key.data(), options.pem_private_key.size());
  return creds;
}

}  // namespace pspgw::control
