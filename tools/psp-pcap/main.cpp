// psp-pcap: PSP encrypt / decrypt / create of pcap captures, byte-compatible with the google/psp reference
// tools psp_encrypt, psp_decrypt and create_pcap (README.md here; shared/spec/psp-protocol.md §6).
//
// Exit status: 0 success; 1 the run failed (bad arguments, config, input, output; nothing trustworthy was
// written: a partial output file is removed); 2 decrypt finished but some PSP frames failed (they are
// counted per reason and left out of the output).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "base/hex.hpp"
#include "config.hpp"
#include "create.hpp"
#include "crypt.hpp"
#include "ports/pcap_io.hpp"
#include "psp/seal.hpp"

namespace pspgw::psp_pcap {
namespace {

constexpr int kExitFailed = 1;
constexpr int kExitFramesFailed = 2;

struct Options {
  std::string config, in, out, backend = "auto", key_hex, start_time;
  bool verbose = false, corrupt = false, empty = false;
  uint64_t first_iv = 1;
  uint32_t count = 1;
  int ip_version = 4;
};

int fail(const std::string& message, const std::string& remove_path = {}) {
  std::fprintf(stderr, "psp-pcap: error: %s\n", message.c_str());
  if (!remove_path.empty()) {
    std::error_code ec;  // best effort: the error above is what matters
    std::filesystem::remove(remove_path, ec);
  }
  return kExitFailed;
}

// The reference's "%02hhx " key lines (-v only: this is a debug tool, and the reference prints them).
void print_key(const char* title, std::span<const uint8_t> key) {
  std::printf("%s:\n  ", title);
  for (uint8_t b : key) std::printf("%02x ", b);
  std::printf("\n");
}

void print_config(const EncryptConfig& c) {
  print_key("Master Key 0", c.keys.key0.reveal());
  print_key("Master Key 1", c.keys.key1.reveal());
  std::printf("SPI: %08x\n", c.spi);
  std::printf("Encap Mode: %s\n", c.mode == psp::Mode::kTransport ? "transport" : "tunnel");
  std::printf("Crypto Alg: %s\n", std::string(psp::to_string(c.version)).c_str());
  std::printf("Transport Mode Crypt Offset:   %u (%u bytes)\n", c.transport_crypt_offset,
              c.transport_crypt_offset * 4u);
  std::printf("Tunnel Mode IPv4 Crypt Offset: %u (%u bytes)\n", c.ipv4_tunnel_crypt_offset,
              c.ipv4_tunnel_crypt_offset * 4u);
  std::printf("Tunnel Mode IPv6 Crypt Offset: %u (%u bytes)\n", c.ipv6_tunnel_crypt_offset,
              c.ipv6_tunnel_crypt_offset * 4u);
  std::printf("VC Mode: %s\n", c.vc ? "vc" : "no-vc");
}

// Opens the input (Ethernet only) and then the output, refusing to overwrite the input.
Result<ports::PcapReader, std::string> open_input(const Options& o) {
  auto in = ports::PcapReader::open(o.in);
  if (!in) return Err{in.error().message};
  if (in->linktype() != ports::kLinktypeEthernet) {
    return Err{o.in + ": link type " + std::to_string(in->linktype()) +
               " is not Ethernet (1); psp-pcap reads Ethernet II captures only"};
  }
  std::error_code ec;
  if (std::filesystem::equivalent(o.in, o.out, ec)) return Err{"output " + o.out + " is the input file"};
  return std::move(in).value();
}

std::unique_ptr<crypto::AeadBackend> backend(const Options& o) {
  return crypto::make_backend(o.backend);
}

// The encryption key: derived from the config, or given with --key (test vectors).
Result<std::unique_ptr<crypto::AeadKey>, std::string> encrypt_key(const EncryptConfig& c, const Options& o,
                                                                  const crypto::AeadBackend& aead) {
  const crypto::AeadAlg alg = *psp::aead_alg(static_cast<uint8_t>(c.version));  // config: 0..3
  if (!o.key_hex.empty()) {
    auto raw = parse_hex(o.key_hex);
    if (!raw || raw->size() != crypto::key_size(alg)) {
      return Err{"--key: expected " + std::to_string(crypto::key_size(alg) * 2) + " hex digits for " +
                 std::string(psp::to_string(c.version))};
    }
    auto key = aead.make_key(alg, *raw);
    secure_zero(raw->data(), raw->size());
    return key;
  }
  const psp::MasterKeySnapshot keys(c.keys.key0.clone(), c.keys.key1.clone(), 0);
  auto derived = keys.derive(c.spi, c.version);
  if (!derived)
    return Err{std::string("cannot derive the key: ") + std::string(psp::to_string(derived.error()))};
  if (o.verbose) print_key("Derived Key", derived->view());
  return aead.make_key(alg, derived->view());
}

int run_encrypt(const Options& o) {
  if (o.verbose) std::printf("starting psp-pcap encrypt\n");
  auto cfg = load_encrypt_config(o.config);
  if (!cfg) return fail(cfg.error().message);
  if (o.verbose) print_config(*cfg);
  auto aead = backend(o);
  if (!aead) return fail("unknown --backend " + o.backend + " (openssl | ipsec-mb | auto)");
  auto key = encrypt_key(*cfg, o, *aead);
  if (!key) return fail(key.error());
  auto in = open_input(o);
  if (!in) return fail(in.error());
  auto out = ports::PcapWriter::create(o.out, kMaxFrame);
  if (!out) return fail(out.error().message);

  net::PacketPool pool(net::kMaxBatch);
  Encryptor enc(*cfg, *aead, **key, EncryptOptions{o.corrupt, o.first_iv, o.verbose ? stderr : nullptr});
  if (auto st = pump(*in, pool, enc, *out); !st) return fail(st.error().message, o.out);
  if (auto st = out->close(); !st) return fail(st.error().message, o.out);

  const EncryptStats& s = enc.stats();
  std::printf("encrypted %llu packets in %s, skipped %llu packets\n",
              static_cast<unsigned long long>(s.encrypted), o.out.c_str(),
              static_cast<unsigned long long>(s.total_skipped()));
  for (std::size_t r = 0; r < s.skipped.size(); ++r) {
    if (s.skipped[r] == 0) continue;
    const auto why = to_string(static_cast<EncryptSkip>(r));
    std::printf("  skipped %llu: %.*s\n", static_cast<unsigned long long>(s.skipped[r]),
                static_cast<int>(why.size()), why.data());
  }
  return 0;
}

void print_decrypt_summary(const DecryptStats& s, const std::string& out) {
  std::printf("decrypted %llu packets in %s, skipped %llu packets, failed %llu packets\n",
              static_cast<unsigned long long>(s.decrypted), out.c_str(),
              static_cast<unsigned long long>(s.total_skipped()),
              static_cast<unsigned long long>(s.total_failed()));
  for (std::size_t r = 0; r < s.skipped.size(); ++r) {
    if (s.skipped[r] == 0) continue;
    const auto why = to_string(static_cast<DecryptSkip>(r));
    std::printf("  skipped %llu: %.*s\n", static_cast<unsigned long long>(s.skipped[r]),
                static_cast<int>(why.size()), why.data());
  }
  for (std::size_t r = 0; r < s.failed.size(); ++r) {
    if (s.failed[r] == 0) continue;
    const auto why = psp::to_string(static_cast<psp::DropReason>(r));
    std::printf("  failed %llu: %.*s\n", static_cast<unsigned long long>(s.failed[r]),
                static_cast<int>(why.size()), why.data());
  }
}

int run_decrypt(const Options& o) {
  if (o.verbose) std::printf("starting psp-pcap decrypt\n");
  auto keys = load_decrypt_config(o.config);
  if (!keys) return fail(keys.error().message);
  if (o.verbose) {
    print_key("Master Key 0", keys->key0.reveal());
    print_key("Master Key 1", keys->key1.reveal());
  }
  auto aead = backend(o);
  if (!aead) return fail("unknown --backend " + o.backend + " (openssl | ipsec-mb | auto)");
  auto in = open_input(o);
  if (!in) return fail(in.error());
  auto out = ports::PcapWriter::create(o.out, kMaxFrame);
  if (!out) return fail(out.error().message);

  net::PacketPool pool(net::kMaxBatch);
  Decryptor dec(*keys, *aead, o.verbose ? stdout : nullptr, stderr);
  if (auto st = pump(*in, pool, dec, *out); !st) return fail(st.error().message, o.out);
  if (auto st = out->close(); !st) return fail(st.error().message, o.out);
  print_decrypt_summary(dec.stats(), o.out);
  return dec.stats().total_failed() == 0 ? 0 : kExitFramesFailed;
}

// --start-time SEC[.USEC]; default: now, as the reference's gettimeofday().
Result<ports::PcapTimestamp, std::string> start_time(const std::string& text) {
  if (text.empty()) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    return ports::PcapTimestamp{static_cast<uint32_t>(us / 1000000), static_cast<uint32_t>(us % 1000000)};
  }
  uint64_t sec = 0;
  uint64_t usec = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && sec <= UINT32_MAX; ++i)
    sec = sec * 10 + (text[i] - '0');
  int frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9' && frac_digits < 6; ++i, ++frac_digits) {
      usec = usec * 10 + (text[i] - '0');
    }
    for (int d = frac_digits; d < 6; ++d) usec *= 10;
  }
  if (i != text.size() || text.empty() || text[0] == '.' || sec > UINT32_MAX) {
    return Err{"--start-time: expected SECONDS[.FRACTION] (at most 6 fraction digits), got '" + text + "'"};
  }
  return ports::PcapTimestamp{static_cast<uint32_t>(sec), static_cast<uint32_t>(usec)};
}

int run_create(const Options& o) {
  const CreateSpec spec{o.ip_version == 6 ? net::IpFamily::kV6 : net::IpFamily::kV4, o.empty};
  auto ts = start_time(o.start_time);
  if (!ts) return fail(ts.error());
  auto out = ports::PcapWriter::create(o.out, kCreateFrameSize);  // create_pcap's snaplen, also for -e
  if (!out) return fail(out.error().message);
  std::array<uint8_t, kCreateFrameSize> frame{};
  for (uint32_t n = 0; n < o.count; ++n) {
    const std::size_t len = build_test_frame(spec, n, frame);
    if (auto st = out->write({frame.data(), len}, *ts); !st) return fail(st.error().message, o.out);
    ++ts->usec;  // as the reference: microseconds only, never carried into seconds
  }
  if (auto st = out->close(); !st) return fail(st.error().message, o.out);
  std::printf("created %u packets in %s\n", o.count, o.out.c_str());
  return 0;
}

void add_crypt_options(CLI::App* cmd, Options& o, bool encrypt) {
  cmd->add_option("-c,--config", o.config,
                  encrypt
                      ? "config: master key 0, master key 1, SPI, transport|tunnel, aes-gcm-128|aes-gcm-256, "
                        "transport / IPv4-tunnel / IPv6-tunnel crypt offsets, vc|no-vc"
                      : "config: master key 0 and master key 1 (32 hex bytes each)")
      ->required();
  cmd->add_option("-i,--in", o.in, "input capture (pcap, Ethernet)")->required();
  cmd->add_option("-o,--out", o.out, "output capture")->required();
  cmd->add_flag("-v,--verbose", o.verbose, "print the configuration and derived keys (secrets!)");
  cmd->add_option("--backend", o.backend, "AES-GCM backend: auto | openssl | ipsec-mb")
      ->capture_default_str();
}

}  // namespace
}  // namespace pspgw::psp_pcap

namespace pspgw::psp_pcap {
namespace {

int run(int argc, char** argv) {
  Options o;
  CLI::App app{
      "PSP encrypt/decrypt/create of pcap captures, byte-compatible with the google/psp reference tools"};
  app.require_subcommand(1);

  auto* enc = app.add_subcommand("encrypt", "PSP-encrypt every IP frame of a capture with one SA");
  add_crypt_options(enc, o, true);
  enc->add_flag("-e,--corrupt", o.corrupt,
                "set a reserved PSP header bit so every frame fails authentication");
  enc->add_option("--first-iv", o.first_iv, "IV of the first encrypted frame")->capture_default_str();
  enc->add_option("--key", o.key_hex, "use this AEAD key (hex) instead of deriving it (test vectors)");

  auto* dec =
      app.add_subcommand("decrypt", "decrypt the PSP frames of a capture, deriving keys from their SPIs");
  add_crypt_options(dec, o, false);

  auto* cre = app.add_subcommand("create", "write the reference create_pcap test frames");
  cre->add_option("-o,-f,--out", o.out, "output capture")->required();
  cre->add_option("-n,--count", o.count, "number of frames")->capture_default_str();
  cre->add_option("-i,--ip", o.ip_version, "IP version")->check(CLI::IsMember({4, 6}))->capture_default_str();
  cre->add_flag("-e,--empty", o.empty, "frames with an empty UDP payload");
  cre->add_option("--start-time", o.start_time,
                  "timestamp of the first frame, SECONDS[.MICROSECONDS] (default: now)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;  // --help is 0; every usage error is 1 (CLI11's own codes vary)
  }
  if (enc->parsed()) return run_encrypt(o);
  if (dec->parsed()) return run_decrypt(o);
  return run_create(o);
}

}  // namespace
}  // namespace pspgw::psp_pcap

int main(int argc, char** argv) {
  try {
    return pspgw::psp_pcap::run(argc, argv);
  } catch (const std::exception& e) {  // bad_alloc, filesystem errors: report, never abort
    std::fprintf(stderr, "psp-pcap: error: %s\n", e.what());
    return 1;
  }
}
