#include "config.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <system_error>

#include "base/secret.hpp"

namespace pspgw::psp_pcap {
namespace {

constexpr std::array<std::string_view, 11> kItemNames = {"config file",
                                                         "master key 0",
                                                         "master key 1",
                                                         "SPI",
                                                         "encap mode",
                                                         "crypto algorithm",
                                                         "transport crypt offset",
                                                         "IPv4 tunnel crypt offset",
                                                         "IPv6 tunnel crypt offset",
                                                         "VC mode",
                                                         "end of config"};

struct Token {
  std::string_view text;
  int line = 0;
};

// Whitespace-separated tokens with their line numbers (what fscanf would see, plus positions).
class Tokenizer {
 public:
  explicit Tokenizer(std::string_view text) : text_(text) {}
  std::optional<Token> next() {
    while (pos_ < text_.size() && is_space(text_[pos_])) {
      if (text_[pos_] == '\n') ++line_;
      ++pos_;
    }
    if (pos_ == text_.size()) return std::nullopt;
    const std::size_t start = pos_;
    while (pos_ < text_.size() && !is_space(text_[pos_])) ++pos_;
    return Token{text_.substr(start, pos_ - start), line_};
  }
  int line() const { return line_; }

 private:
  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
  }
  std::string_view text_;
  std::size_t pos_ = 0;
  int line_ = 1;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Parses 1..max_digits hex digits; nullopt otherwise.
std::optional<uint32_t> parse_hex_number(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    const int d = hex_digit(c);
    if (d < 0) return std::nullopt;
    v = v << 4 | static_cast<uint32_t>(d);
  }
  return v;
}

std::string quote(const std::optional<Token>& t) {
  if (!t) return "end of file";
  if (t->text.size() > 24) return "'" + std::string(t->text.substr(0, 24)) + "...'";
  return "'" + std::string(t->text) + "'";
}

ConfigError error(int item, const std::optional<Token>& t, int eof_line, const std::string& what) {
  const int line = t ? t->line : eof_line;
  return ConfigError{item, "item " + std::to_string(item) + " (" + std::string(kItemNames[item]) +
                               "), line " + std::to_string(line) + ": " + what};
}

// Master keys: 32 tokens of 1-2 hex digits (the reference's "%hhx" x 32), or one 64-digit token.
// Malformed key tokens are described, not echoed, so a typo does not print most of a key.
Status<ConfigError> parse_key(Tokenizer& tz, int item, crypto::MasterKey& key) {
  auto bytes = key.mutable_bytes();
  std::optional<Token> t = tz.next();
  if (t && t->text.size() == 64) {
    for (std::size_t i = 0; i < 32; ++i) {
      const auto b = parse_hex_number(t->text.substr(2 * i, 2), 2);
      if (!b) return Err{error(item, t, tz.line(), "64-character key contains a non-hex character")};
      bytes[i] = static_cast<uint8_t>(*b);
    }
    return {};
  }
  for (std::size_t i = 0; i < 32; ++i) {
    if (i > 0) t = tz.next();
    const auto b = t ? parse_hex_number(t->text, 2) : std::nullopt;
    if (!b) {
      const std::string found = !t ? std::string("end of file")
                                : t->text.size() <= 2
                                    ? quote(t)
                                    : "a token of " + std::to_string(t->text.size()) + " characters";
      return Err{error(item, t, tz.line(),
                       "byte " + std::to_string(i + 1) + " of 32: expected 2 hex digits, found " + found)};
    }
    bytes[i] = static_cast<uint8_t>(*b);
  }
  return {};
}

Status<ConfigError> parse_keys(Tokenizer& tz, MasterKeys& keys) {
  if (auto st = parse_key(tz, 1, keys.key0); !st) return st;
  return parse_key(tz, 2, keys.key1);
}

Result<uint32_t, ConfigError> parse_spi(Tokenizer& tz) {
  const auto t = tz.next();
  std::string_view s = t ? t->text : std::string_view{};
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
  const auto spi = parse_hex_number(s, 8);
  if (!spi)
    return Err{error(3, t, tz.line(), "expected a 32-bit hex SPI (1 to 8 hex digits), found " + quote(t))};
  if ((*spi & 0x7fffffffu) == 0) {
    return Err{
        error(3, t, tz.line(), "SPI " + std::string(t->text) + " is invalid: its low 31 bits are zero")};
  }
  return *spi;
}

// One of two words; returns true for `first`.
Result<bool, ConfigError> parse_choice(Tokenizer& tz, int item, std::string_view first,
                                       std::string_view second) {
  const auto t = tz.next();
  if (t && t->text == first) return true;
  if (t && t->text == second) return false;
  return Err{
      error(item, t, tz.line(),
            "expected '" + std::string(first) + "' or '" + std::string(second) + "', found " + quote(t))};
}

// Item 5: the reference's two algorithms, and the GMAC versions 2/3 (integrity only) in the same spelling.
Result<psp::PspVersion, ConfigError> parse_version(Tokenizer& tz, int item) {
  const auto t = tz.next();
  for (uint8_t v = 0; v <= psp::kPspMaxVersion; ++v) {
    if (t && t->text == psp::to_string(static_cast<psp::PspVersion>(v)))
      return static_cast<psp::PspVersion>(v);
  }
  return Err{
      error(item, t, tz.line(),
            "expected 'aes-gcm-128', 'aes-gcm-256', 'aes-gmac-128' or 'aes-gmac-256', found " + quote(t))};
}

Result<uint8_t, ConfigError> parse_crypt_offset(Tokenizer& tz, int item) {
  const auto t = tz.next();
  const std::string_view s = t ? t->text : std::string_view{};
  uint32_t v = 0;
  bool ok = !s.empty() && s.size() <= 3;
  for (char c : s) {
    ok = ok && c >= '0' && c <= '9';
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!ok || v > psp::kPspMaxCryptOffset) {
    return Err{error(item, t, tz.line(),
                     "expected a crypt offset in 4-octet units, 0 to " +
                         std::to_string(psp::kPspMaxCryptOffset) + ", found " + quote(t))};
  }
  return static_cast<uint8_t>(v);
}

Status<ConfigError> expect_end(Tokenizer& tz) {
  const auto t = tz.next();
  if (t) return Err{error(10, t, tz.line(), "unexpected " + quote(t) + " after the last item")};
  return {};
}

// Items 3..9 (after the keys).
Status<ConfigError> parse_sa(Tokenizer& tz, EncryptConfig& c) {
  auto spi = parse_spi(tz);
  if (!spi) return Err{spi.error()};
  c.spi = *spi;
  auto transport = parse_choice(tz, 4, "transport", "tunnel");
  if (!transport) return Err{transport.error()};
  c.mode = *transport ? psp::Mode::kTransport : psp::Mode::kTunnel;
  auto version = parse_version(tz, 5);
  if (!version) return Err{version.error()};
  c.version = *version;
  uint8_t* offsets[] = {&c.transport_crypt_offset, &c.ipv4_tunnel_crypt_offset, &c.ipv6_tunnel_crypt_offset};
  for (int i = 0; i < 3; ++i) {
    auto off = parse_crypt_offset(tz, 6 + i);
    if (!off) return Err{off.error()};
    *offsets[i] = *off;
  }
  auto vc = parse_choice(tz, 9, "vc", "no-vc");
  if (!vc) return Err{vc.error()};
  c.vc = *vc;
  return expect_end(tz);
}

// Config files are small; reading into one preallocated string means a single copy of the keys to zero.
Result<std::string, ConfigError> read_file(const std::string& path) {
  constexpr std::size_t kMaxConfig = 64 * 1024;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Err{ConfigError{
        0, "cannot open config " + path + ": " + std::error_code(errno, std::generic_category()).message()}};
  }
  std::string text(kMaxConfig + 1, '\0');
  const std::size_t n = std::fread(text.data(), 1, text.size(), f);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return Err{ConfigError{0, "cannot read config " + path}};
  if (n > kMaxConfig) return Err{ConfigError{0, "config " + path + " is larger than 64 KiB"}};
  text.resize(n);
  return text;
}

template <class T>
Result<T, ConfigError> load(const std::string& path, Result<T, ConfigError> (*parse)(std::string_view)) {
  auto text = read_file(path);
  if (!text) return Err{text.error()};
  auto r = parse(*text);
  secure_zero(text->data(), text->size());
  if (!r) return Err{ConfigError{r.error().item, path + ": " + r.error().message}};
  return r;
}

}  // namespace

Result<EncryptConfig, ConfigError> parse_encrypt_config(std::string_view text) {
  Tokenizer tz(text);
  EncryptConfig c;
  if (auto st = parse_keys(tz, c.keys); !st) return Err{st.error()};
  if (auto st = parse_sa(tz, c); !st) return Err{st.error()};
  return c;
}

Result<MasterKeys, ConfigError> parse_decrypt_config(std::string_view text) {
  Tokenizer tz(text);
  MasterKeys keys;
  if (auto st = parse_keys(tz, keys); !st) return Err{st.error()};
  Tokenizer rest = tz;
  if (!rest.next()) return keys;
  // More items: accept an encrypt config (its first two items are the keys), validated in full.
  EncryptConfig unused;
  if (auto st = parse_sa(tz, unused); !st) return Err{st.error()};
  return keys;
}

Result<EncryptConfig, ConfigError> load_encrypt_config(const std::string& path) {
  return load<EncryptConfig>(path, &parse_encrypt_config);
}

Result<MasterKeys, ConfigError> load_decrypt_config(const std::string& path) {
  return load<MasterKeys>(path, &parse_decrypt_config);
}

}  // namespace pspgw::psp_pcap
