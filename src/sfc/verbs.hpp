// The `pspctl sfc` verbs (issue 8) as one parser over an argument vector, so the admin channel and the
// config's x-sw.sfc (which the gateway turns into the same verbs) change the registry the same way:
//
//   pair-add IN_PORT OUT_PORT PAIR                 pair-del PAIR
//   chain-add CHAIN                                chain-del CHAIN
//   group-add CHAIN GROUP [--fail-mode open|close] group-del GROUP
//   group-pair-add GROUP PAIR                      group-pair-del GROUP PAIR
//   classifier-add CHAIN PORT entry-lport|exit-lport bi-directional|uni-directional NAME [MATCH]
//   classifier-del NAME
//   show                                           (the caller renders it: to_json and counters)
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "sfc/chains.hpp"

namespace pspgw::sfc {

// True for the verbs that change the registry (everything but show).
bool is_change_verb(const std::string& verb);
// Runs one change verb: argv[0] is the verb. Errors: bad-argument with the usage line for a wrong argument
// count or an unknown verb or keyword, else the registry's own error.
Status<SfcError> run_verb(ServiceChains& chains, const std::vector<std::string>& argv);

}  // namespace pspgw::sfc
