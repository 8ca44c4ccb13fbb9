#include "sfc/verbs.hpp"

#include <array>
#include <string_view>

namespace pspgw::sfc {
namespace {

struct Usage {
  std::string_view verb;
  std::size_t min_args, max_args;  // after the verb
  std::string_view usage;
};

constexpr std::array<Usage, 10> kVerbs = {{
    {"pair-add", 3, 3, "pair-add IN_PORT OUT_PORT PAIR"},
    {"pair-del", 1, 1, "pair-del PAIR"},
    {"chain-add", 1, 1, "chain-add CHAIN"},
    {"chain-del", 1, 1, "chain-del CHAIN"},
    {"group-add", 2, 4, "group-add CHAIN GROUP [--fail-mode open|close]"},
    {"group-del", 1, 1, "group-del GROUP"},
    {"group-pair-add", 2, 2, "group-pair-add GROUP PAIR"},
    {"group-pair-del", 2, 2, "group-pair-del GROUP PAIR"},
    {"classifier-add", 5, 6,
     "classifier-add CHAIN PORT entry-lport|exit-lport bi-directional|uni-directional NAME [MATCH]"},
    {"classifier-del", 1, 1, "classifier-del NAME"},
}};

const Usage* find(const std::string& verb) {
  for (const Usage& u : kVerbs)
    if (u.verb == verb) return &u;
  return nullptr;
}

Err<SfcError> usage(const Usage& u, const std::string& why) {
  return Err{SfcError{SfcError::Code::kBadArgument, why + " (usage: " + std::string(u.usage) + ")"}};
}

Status<SfcError> group_add(ServiceChains& chains, const Usage& u, const std::vector<std::string>& a) {
  FailMode mode = FailMode::kClose;
  if (a.size() == 5) {
    if (a[3] != "--fail-mode") return usage(u, "unexpected '" + a[3] + "'");
    auto m = parse_fail_mode(a[4]);
    if (!m) return usage(u, "--fail-mode '" + a[4] + "' is not open or close");
    mode = *m;
  } else if (a.size() != 3) {
    return usage(u, "--fail-mode needs a value");
  }
  return chains.group_add(a[1], a[2], mode);
}

Status<SfcError> classifier_add(ServiceChains& chains, const Usage& u, const std::vector<std::string>& a) {
  auto dir = parse_direction(a[3]);
  if (!dir) return usage(u, "'" + a[3] + "' is not entry-lport or exit-lport");
  auto sym = parse_symmetric(a[4]);
  if (!sym) return usage(u, "'" + a[4] + "' is not bi-directional or uni-directional");
  return chains.classifier_add(a[1], a[2], *dir, *sym, a[5], a.size() > 6 ? a[6] : std::string());
}

}  // namespace

bool is_change_verb(const std::string& verb) {
  return find(verb) != nullptr;
}

Status<SfcError> run_verb(ServiceChains& chains, const std::vector<std::string>& a) {
  const Usage* u = a.empty() ? nullptr : find(a[0]);
  if (u == nullptr) {
    std::string verbs;
    for (const Usage& v : kVerbs) verbs += std::string(verbs.empty() ? "" : ", ") + std::string(v.verb);
    return Err{SfcError{SfcError::Code::kBadArgument, "unknown verb '" + (a.empty() ? std::string() : a[0]) +
                                                          "' (expected show, " + verbs + ")"}};
  }
  const std::size_t n = a.size() - 1;
  if (n < u->min_args || n > u->max_args) return usage(*u, "wrong number of arguments");
  const std::string& v = a[0];
  if (v == "pair-add") return chains.pair_add(a[1], a[2], a[3]);
  if (v == "pair-del") return chains.pair_del(a[1]);
  if (v == "chain-add") return chains.chain_add(a[1]);
  if (v == "chain-del") return chains.chain_del(a[1]);
  if (v == "group-add") return group_add(chains, *u, a);
  if (v == "group-del") return chains.group_del(a[1]);
  if (v == "group-pair-add") return chains.group_pair_add(a[1], a[2]);
  if (v == "group-pair-del") return chains.group_pair_del(a[1], a[2]);
  if (v == "classifier-add") return classifier_add(chains, *u, a);
  return chains.classifier_del(a[1]);
}

}  // namespace pspgw::sfc
