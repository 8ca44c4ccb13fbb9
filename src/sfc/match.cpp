// Lexer and recursive-descent parser of the MATCH language; every term evaluates to a list of
// conjunctions, "&&" intersects lists pairwise and "||" concatenates them (disjunctive normal form).
#include "sfc/match.hpp"

#include <algorithm>
#include <charconv>

namespace pspgw::sfc {
namespace {

constexpr std::size_t kMaxDepth = 32;  // parentheses: bounded recursion

using Dnf = std::vector<Conjunction>;

struct Token {
  enum Kind : uint8_t { kEnd, kWord, kAnd, kOr, kLParen, kRParen, kOp } kind = kEnd;
  std::string_view text;
  std::size_t pos = 0;
};

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == ':' ||
         c == '/' || c == '_';
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Result<Dnf, MatchError> run() {
    if (s_.size() > kMaxMatchLength) return fail(kMaxMatchLength, "expression longer than 1024 characters");
    if (auto t = next(); !t) return Err{t.error()};
    if (tok_.kind == Token::kEnd) return Dnf{Conjunction{}};
    auto e = expr(0);
    if (!e) return e;
    if (tok_.kind != Token::kEnd)
      return fail(tok_.pos, "expected '&&', '||' or the end, found '" + text() + "'");
    if (e->empty()) return fail(0, "the match is never true");
    return e;
  }

 private:
  Err<MatchError> fail(std::size_t pos, std::string msg) const {
    return Err{MatchError{pos + 1, std::move(msg)}};
  }
  std::string text() const { return std::string(tok_.text); }

  Status<MatchError> next() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n')) ++i_;
    tok_ = {Token::kEnd, {}, i_};
    if (i_ == s_.size()) return {};
    const std::string_view rest = s_.substr(i_);
    const auto take = [&](Token::Kind k, std::size_t n) {
      tok_ = {k, rest.substr(0, n), i_};
      i_ += n;
    };
    if (rest.starts_with("&&"))
      take(Token::kAnd, 2);
    else if (rest.starts_with("||"))
      take(Token::kOr, 2);
    else if (rest.starts_with("==") || rest.starts_with("!=") || rest.starts_with("<=") ||
             rest.starts_with(">="))
      take(Token::kOp, 2);
    else if (rest[0] == '<' || rest[0] == '>')
      take(Token::kOp, 1);
    else if (rest[0] == '(')
      take(Token::kLParen, 1);
    else if (rest[0] == ')')
      take(Token::kRParen, 1);
    else if (word_char(rest[0])) {
      std::size_t n = 0;
      while (n < rest.size() && word_char(rest[n])) ++n;
      take(Token::kWord, n);
    } else {
      return fail(i_, std::string("unexpected character '") + rest[0] + "'");
    }
    return {};
  }

  Result<Dnf, MatchError> expr(std::size_t depth) {
    auto left = conj(depth);
    if (!left) return left;
    while (tok_.kind == Token::kOr) {
      const std::size_t at = tok_.pos;
      if (auto t = next(); !t) return Err{t.error()};
      auto right = conj(depth);
      if (!right) return right;
      for (const Conjunction& c : *right)
        if (std::find(left->begin(), left->end(), c) == left->end()) left->push_back(c);
      if (left->size() > kMaxConjunctions) return fail(at, "too complex: more than 32 alternatives");
    }
    return left;
  }

  Result<Dnf, MatchError> conj(std::size_t depth) {
    auto left = term(depth);
    if (!left) return left;
    while (tok_.kind == Token::kAnd) {
      const std::size_t at = tok_.pos;
      if (auto t = next(); !t) return Err{t.error()};
      auto right = term(depth);
      if (!right) return right;
      Dnf both;
      for (const Conjunction& a : *left)
        for (const Conjunction& b : *right)
          if (auto c = intersect(a, b); c && std::find(both.begin(), both.end(), *c) == both.end()) {
            both.push_back(*c);
            if (both.size() > kMaxConjunctions) return fail(at, "too complex: more than 32 alternatives");
          }
      *left = std::move(both);
    }
    return left;
  }

  Result<Dnf, MatchError> term(std::size_t depth) {
    if (tok_.kind == Token::kLParen) {
      if (depth == kMaxDepth) return fail(tok_.pos, "parentheses nested too deeply");
      const std::size_t open = tok_.pos;
      if (auto t = next(); !t) return Err{t.error()};
      auto e = expr(depth + 1);
      if (!e) return e;
      if (tok_.kind != Token::kRParen)
        return fail(tok_.pos, "expected ')' to close '(' at column " + std::to_string(open + 1));
      if (auto t = next(); !t) return Err{t.error()};
      return e;
    }
    if (tok_.kind != Token::kWord) {
      return fail(tok_.pos, tok_.kind == Token::kEnd ? std::string("expected a term, found the end")
                                                     : "expected a term, found '" + text() + "'");
    }
    const Token word = tok_;
    if (auto t = next(); !t) return Err{t.error()};
    if (auto p = protocol(word.text)) return Dnf{*p};
    return field(word);
  }

  static std::optional<Conjunction> protocol(std::string_view w) {
    Conjunction c;
    if (w == "ip") return c;
    if (w == "ip4" || w == "ip6") {
      c.family = w == "ip4" ? 4 : 6;
      return c;
    }
    if (w == "tcp" || w == "udp") {
      c.proto = w == "tcp" ? 6 : 17;
      return c;
    }
    if (w == "icmp4" || w == "icmp6") {
      c.family = w == "icmp4" ? 4 : 6;
      c.proto = w == "icmp4" ? 1 : 58;
      return c;
    }
    return std::nullopt;
  }

  Result<Dnf, MatchError> field(const Token& word) {
    const std::string_view w = word.text;
    const bool addr = w == "ip4.src" || w == "ip4.dst" || w == "ip6.src" || w == "ip6.dst";
    const bool port = w == "tcp.src" || w == "tcp.dst" || w == "udp.src" || w == "udp.dst";
    if (!addr && !port) return fail(word.pos, "unknown field or protocol '" + std::string(w) + "'");
    if (tok_.kind != Token::kOp)
      return fail(tok_.pos, "expected a comparison after '" + std::string(w) + "'");
    const Token op = tok_;
    if (auto t = next(); !t) return Err{t.error()};
    if (tok_.kind != Token::kWord)
      return fail(tok_.pos, "expected a value after '" + std::string(op.text) + "'");
    const Token value = tok_;
    if (auto t = next(); !t) return Err{t.error()};
    if (addr) return address(w, op, value);
    return ports(w, op, value);
  }

  Result<Dnf, MatchError> address(std::string_view w, const Token& op, const Token& value) {
    const uint8_t family = w[2] == '4' ? 4 : 6;
    if (op.text != "==") return fail(op.pos, "addresses compare with '==' only");
    std::string_view a = value.text;
    unsigned len = family == 4 ? 32 : 128;
    if (const auto slash = a.find('/'); slash != std::string_view::npos) {
      const std::string_view l = a.substr(slash + 1);
      unsigned v = 0;
      const auto r = std::from_chars(l.data(), l.data() + l.size(), v);
      if (r.ec != std::errc{} || r.ptr != l.data() + l.size() || v > len)
        return fail(value.pos + slash + 1, "bad prefix length '" + std::string(l) + "'");
      len = v;
      a = a.substr(0, slash);
    }
    const auto ip = net::IpAddr::parse(a);
    if (!ip || (family == 4) != ip->is_v4())
      return fail(value.pos, std::string("expected an IPv") + (family == 4 ? "4" : "6") +
                                 " address, found '" + std::string(a) + "'");
    AddrPrefix p{*ip, len};
    for (unsigned bit = len; bit < ip->size() * 8; ++bit)
      p.addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80U >> (bit % 8)));
    Conjunction c;
    c.family = family;
    (w.ends_with("src") ? c.src : c.dst) = p;
    return Dnf{c};
  }

  Result<Dnf, MatchError> ports(std::string_view w, const Token& op, const Token& value) {
    unsigned v = 0;
    const std::string_view t = value.text;
    const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
    if (r.ec != std::errc{} || r.ptr != t.data() + t.size() || v > 65535)
      return fail(value.pos, "expected a port 0..65535, found '" + std::string(t) + "'");
    const auto p = static_cast<uint16_t>(v);
    std::vector<PortRange> ranges;
    if (op.text == "==") ranges.push_back({p, p});
    if (op.text == "!=" && p > 0) ranges.push_back({0, static_cast<uint16_t>(p - 1)});
    if (op.text == "!=" && p < 65535) ranges.push_back({static_cast<uint16_t>(p + 1), 65535});
    if (op.text == "<" && p > 0) ranges.push_back({0, static_cast<uint16_t>(p - 1)});
    if (op.text == "<=") ranges.push_back({0, p});
    if (op.text == ">" && p < 65535) ranges.push_back({static_cast<uint16_t>(p + 1), 65535});
    if (op.text == ">=") ranges.push_back({p, 65535});
    Dnf out;
    for (const PortRange& pr : ranges) {
      Conjunction c;
      c.proto = w.starts_with("tcp") ? 6 : 17;
      (w.ends_with("src") ? c.sport : c.dport) = pr;
      out.push_back(c);
    }
    return out;  // empty (e.g. "tcp.dst < 0"): never true
  }

  std::string_view s_;
  std::size_t i_ = 0;
  Token tok_;
};

std::optional<AddrPrefix> meet(const std::optional<AddrPrefix>& a, const std::optional<AddrPrefix>& b,
                               bool* empty) {
  if (!a) return b;
  if (!b) return a;
  const AddrPrefix& wide = a->len <= b->len ? *a : *b;
  const AddrPrefix& narrow = a->len <= b->len ? *b : *a;
  if (wide.addr.family != narrow.addr.family) {
    *empty = true;
    return a;
  }
  for (unsigned bit = 0; bit < wide.len; ++bit) {
    const uint8_t m = static_cast<uint8_t>(0x80U >> (bit % 8));
    if ((wide.addr.bytes[bit / 8] & m) != (narrow.addr.bytes[bit / 8] & m)) *empty = true;
  }
  return narrow;
}

void append(std::string& s, const std::string& part) {
  if (!s.empty()) s += " && ";
  s += part;
}

void append_range(std::string& s, const char* field, const PortRange& r) {
  if (r.any()) return;
  if (r.lo == r.hi) return append(s, std::string(field) + " == " + std::to_string(r.lo));
  if (r.lo != 0) append(s, std::string(field) + " >= " + std::to_string(r.lo));
  if (r.hi != 65535) append(s, std::string(field) + " <= " + std::to_string(r.hi));
}

}  // namespace

std::string MatchError::to_string() const {
  return "column " + std::to_string(column) + ": " + message;
}

Result<Match, MatchError> parse_match(std::string_view text) {
  auto d = Parser(text).run();
  if (!d) return Err{d.error()};
  Match m{std::move(*d)};
  // What is accepted must read back: `pspctl sfc show` and a config written out print the normal form,
  // which "!=" and "||" can make longer than the text (fuzz_sfc_match found nine "!=" of 150 characters
  // whose normal form is 2,000).
  if (to_string(m).size() > kMaxMatchLength) {
    return Err{MatchError{1, "too complex: its normal form is longer than 1024 characters"}};
  }
  return m;
}

std::optional<Conjunction> intersect(const Conjunction& a, const Conjunction& b) {
  Conjunction c;
  if (a.family != 0 && b.family != 0 && a.family != b.family) return std::nullopt;
  if (a.proto != 0 && b.proto != 0 && a.proto != b.proto) return std::nullopt;
  c.family = a.family != 0 ? a.family : b.family;
  c.proto = a.proto != 0 ? a.proto : b.proto;
  bool empty = false;
  c.src = meet(a.src, b.src, &empty);
  c.dst = meet(a.dst, b.dst, &empty);
  c.sport = {std::max(a.sport.lo, b.sport.lo), std::min(a.sport.hi, b.sport.hi)};
  c.dport = {std::max(a.dport.lo, b.dport.lo), std::min(a.dport.hi, b.dport.hi)};
  if (empty || c.sport.lo > c.sport.hi || c.dport.lo > c.dport.hi) return std::nullopt;
  return c;
}

bool overlaps(const Match& a, const Match& b) {
  for (const Conjunction& x : a.any_of)
    for (const Conjunction& y : b.any_of)
      if (intersect(x, y)) return true;
  return false;
}

std::string to_string(const Conjunction& c) {
  std::string s;
  if (c.family != 0 && !(c.proto == 1 || c.proto == 58)) append(s, c.family == 4 ? "ip4" : "ip6");
  if (c.proto == 6) append(s, "tcp");
  if (c.proto == 17) append(s, "udp");
  if (c.proto == 1) append(s, "icmp4");
  if (c.proto == 58) append(s, "icmp6");
  const char* v = c.family == 4 ? "ip4" : "ip6";
  if (c.src)
    append(s, std::string(v) + ".src == " + c.src->addr.to_string() + "/" + std::to_string(c.src->len));
  if (c.dst)
    append(s, std::string(v) + ".dst == " + c.dst->addr.to_string() + "/" + std::to_string(c.dst->len));
  const char* l4 = c.proto == 6 ? "tcp" : "udp";
  append_range(s, (std::string(l4) + ".src").c_str(), c.sport);
  append_range(s, (std::string(l4) + ".dst").c_str(), c.dport);
  return s.empty() ? "ip" : s;
}

std::string to_string(const Match& m) {
  if (m.any_of.size() == 1) return to_string(m.any_of[0]);
  std::string s;
  for (const Conjunction& c : m.any_of) {
    if (!s.empty()) s += " || ";
    s += "(" + to_string(c) + ")";
  }
  return s;
}

}  // namespace pspgw::sfc
