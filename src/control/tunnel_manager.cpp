#include "control/tunnel_manager.hpp"

#include <algorithm>
#include <cstdio>
#include <future>
#include <map>
#include <random>
#include <thread>
#include <utility>

#include "base/hex.hpp"

namespace pspgw::control {

namespace {

// Rotation requests queued while one is deferred; more are merged into the last.
constexpr std::size_t kMaxQueuedRotations = 4;
// While re-keys are pending, at most one progress line per this period.
constexpr auto kRekeyReportPeriod = std::chrono::seconds(10);

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

psp::DerivedKey clone_key(const psp::DerivedKey& k) {
  return psp::DerivedKey{k.version, k.bytes.clone()};
}

std::string describe(const VipPair& p) {
  return p.local.to_string() + " -> " + p.remote.to_string();
}

ControlError map_data_plane(DataPlaneError e) {
  switch (e) {
    case DataPlaneError::kNoSpace:
      return ControlError::kResourceExhausted;
    case DataPlaneError::kRejected:
      return ControlError::kInvalidArgument;
    case DataPlaneError::kExists:
    case DataPlaneError::kNotFound:
      break;
  }
  return ControlError::kInternal;
}

Err<Error> data_plane_failure(std::string_view what, const VipPair& pair, DataPlaneError e) {
  return fail(map_data_plane(e),
              std::string(what) + " for " + describe(pair) + " failed: " + std::string(to_string(e)));
}

uint64_t random_request_base() {
  std::random_device rd;  // request ids are unique per initiating host, also across restarts (spec §2)
  return (static_cast<uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffULL;
}

}  // namespace

std::string_view to_string(PairState s) {
  switch (s) {
    case PairState::kIdle:
      return "idle";
    case PairState::kInFlight:
      return "in-flight";
    case PairState::kConnected:
      return "connected";
    case PairState::kBackoff:
      return "backoff";
  }
  return "?";
}

Clock::duration Backoff::next(Clock::duration current) const {
  if (current <= Clock::duration::zero()) return initial;
  return std::min(current * 2, max);
}

// One per session, 120 bytes: the wide fields first, so that the narrow ones pack behind them.
struct TunnelManager::Session {
  // SPIs handed to the peer and open in INGR_ACL, newest first, with the key-ring generation they were
  // issued in: an SPI dies two rotations after its generation (its slot then holds another key).
  struct Ingress {
    uint32_t spi;
    uint64_t generation;
    bool retiring = false;  // superseded by a confirmed newer SPI; closed retire_delay later
  };
  std::vector<Ingress> ingress;
  uint64_t token = 0;  // of the exchange in flight
  Clock::duration backoff{};
  Clock::time_point retry_at{};
  // When the peer last moved to another of our SPIs (our exchange confirmed, or we answered its request):
  // packets it sealed with the SPI it left may still be queued, so a rotation must not kill that one yet.
  Clock::time_point moved_at{};
  // Idle aging: the last activity counter seen and when it last changed.
  uint64_t activity = 0;
  Clock::time_point active_at{};
  // Egress installs from the peer's own requests (served), and their count when our exchange began: if
  // it moved, the peer's request is newer than our answer (header comment). Only compared for equality:
  // 32 bits cannot wrap between the two.
  uint32_t served_egress = 0;
  uint32_t served_at_begin = 0;
  std::optional<uint32_t> egress_spi;
  uint32_t peer = 0;  // PeerIndex
  std::optional<net::IpAddr> egress_outer;
  bool in_flight = false;
  bool rekey_due = false;
  bool refresh_due = false;  // the peer may have restarted: re-exchange (refresh_peer)
  bool counted = false;      // in active_ (count_active_locked)

  bool active() const { return in_flight || egress_spi || !ingress.empty(); }
};

// What one server request did, so a failure half-way leaves nothing behind (the requester gets only
// a status, so any entry left installed would be an orphan).
struct TunnelManager::Undo {
  std::vector<std::pair<VipPair, uint32_t>> opened;
  std::vector<VipPair> new_egress;
  bool refresh = false;  // some session became refresh due (kept even if the request fails)
};

TunnelManager::TunnelManager(psp::KeyRing keys, std::vector<PeerPolicy> peers, DataPlane& data_plane,
                             TunnelManagerOptions options)
    : keys_(std::move(keys)),
      data_plane_(data_plane),
      options_(std::move(options)),
      next_request_id_(random_request_base()) {
  if (!options_.now) options_.now = [] { return Clock::now(); };
  if (!options_.log)
    options_.log = [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
  peer_state_.resize(peers.size());
  for (PeerIndex i = 0; i < peers.size(); ++i) {
    PeerPolicy& p = peers[i];
    Peer& peer = peers_.emplace_back(Peer{std::move(p.name), {}, p.pip, p.outer_hint});
    peer.pairs.reserve(p.pairs.size());
    for (const VipPair& pair : p.pairs) peer.pairs.push_back(intern_locked(pair, i));
    p.pairs = {};  // freed as we go: at 100k pairs, the copy would double the peak
    pips_.push_back(peer.pip);
    peer_state_[i].outer = peer.pip ? peer.pip : peer.outer_hint;
  }
  last_peer_rotation_.resize(peers_.size());
  close_budget_.resize(peers_.size());
  data_plane_.publish_master_keys(keys_.snapshot());
  last_rotation_ = now();
}

TunnelManager::~TunnelManager() = default;

// ---------------------------------------------------------------------------------------------------
// Server side.

// Supported: the encrypting versions 0 and 1 always; an integrity-only version (2/3, GMAC) only where this
// gateway's own --psp-version is that version: a requester cannot talk an operator who chose encryption into
// tunnels that carry the payload in the clear.
CResult<psp::PspVersion> TunnelManager::negotiate(const std::vector<uint32_t>& accepted) const {
  const auto own = static_cast<uint32_t>(options_.version);
  for (uint32_t v : accepted) {  // first of the requester's list that we support (spec §2)
    if (v <= 1 || v == own) return static_cast<psp::PspVersion>(v);
  }
  std::string list;
  for (uint32_t v : accepted) list += (list.empty() ? "" : ",") + std::to_string(v);
  const std::string supported = own > 1 ? "0, 1, " + std::to_string(own) : "0, 1";
  return fail(ControlError::kInvalidArgument,
              "none of the accepted PSP versions [" + list + "] is supported (" + supported + ")");
}

CStatus TunnelManager::check_request_locked(const MultiTunnelRequest& request) const {
  if (request.tunnels.empty()) return fail(ControlError::kInvalidArgument, "request has no tunnels");
  if (request.tunnels.size() > options_.max_tunnels_per_request) {
    return fail(ControlError::kInvalidArgument,
                "request has " + std::to_string(request.tunnels.size()) + " tunnels, at most " +
                    std::to_string(options_.max_tunnels_per_request) + " are accepted");
  }
  std::size_t fresh = 0;
  for (const TunnelRequest& t : request.tunnels) {
    const VipPair pair{t.responder_vip, t.requester_vip};
    if (pair.local.family != pair.remote.family) {
      return fail(ControlError::kInvalidArgument, "tunnel " + describe(pair) + " mixes IPv4 and IPv6");
    }
    const PairId id = pairs_.find(pair);
    if (id == PairTable::kNone) {
      return fail(ControlError::kPermissionDenied, "no peer is configured for a tunnel from " +
                                                       pair.remote.to_string() + " to local VIP " +
                                                       pair.local.to_string());
    }
    const Session* s = session_at(id);
    if (s == nullptr || !s->active()) ++fresh;
  }
  if (over_tunnel_limit_locked(fresh)) {
    return fail(ControlError::kResourceExhausted,
                "tunnel limit reached (" + std::to_string(options_.max_tunnels) + ", see --max-tunnels)");
  }
  return {};
}

std::string TunnelManager::describe_caller(const Caller& caller) const {
  std::string names;
  for (PeerIndex p : caller.peers) names += (names.empty() ? "" : ", ") + peers_.at(p).name;
  return "peer " + (names.empty() ? "(none)" : names) + " (" + caller.proof + ")";
}

void TunnelManager::log_refusal_locked(const std::string& line) {
  if (refusal_log_.allow(now())) log(line + refusal_log_.suffix());
}

CStatus TunnelManager::check_pip_locked(PeerIndex peer, const net::IpAddr& outer_ip) const {
  const auto& bound = pips_.at(peer);
  if (!bound || *bound == outer_ip) return {};
  return fail(ControlError::kPermissionDenied, peers_[peer].name + " names PIP " + outer_ip.to_string() +
                                                   ", but is bound to PIP " + bound->to_string());
}

// Before anything is touched: every pair must belong to a peer the caller may act for, and reverse params
// must name that peer's bound PIP (or, before it is bound, one PIP per peer within the request).
CStatus TunnelManager::authorise_locked(const Caller& caller, const MultiTunnelRequest& request) {
  if (request.tunnels.size() > options_.max_tunnels_per_request) return {};  // check_request_locked refuses
  std::vector<std::pair<PeerIndex, net::IpAddr>> unbound;
  for (const TunnelRequest& t : request.tunnels) {
    const VipPair pair{t.responder_vip, t.requester_vip};
    const std::optional<PeerIndex> owner = owner_locked(pair);
    if (!owner) continue;  // no peer at all: check_request_locked refuses it
    if (!caller.may_act_for(*owner)) {
      log_refusal_locked("refused " + describe_caller(caller) + ": tunnel " + describe(pair) +
                         " belongs to peer " + peers_[*owner].name);
      return fail(ControlError::kPermissionDenied, "tunnel " + describe(pair) + " is not configured for you");
    }
    if (!t.reverse_params) continue;
    const net::IpAddr& pip = t.reverse_params->outer_ip;
    CStatus ok = check_pip_locked(*owner, pip);
    auto first =
        std::find_if(unbound.begin(), unbound.end(), [&](const auto& u) { return u.first == *owner; });
    if (ok && first != unbound.end() && first->second != pip) {
      ok = fail(ControlError::kPermissionDenied, "one request names PIPs " + first->second.to_string() +
                                                     " and " + pip.to_string() + " for " +
                                                     peers_[*owner].name);
    }
    if (!ok) {
      log_refusal_locked("refused " + describe_caller(caller) + ": tunnel " + describe(pair) + ": " +
                         ok.error().message);
      return ok;
    }
    // One entry per peer not yet bound (a caller acts for few peers): the PIP its first tunnel named.
    if (!pips_[*owner] && first == unbound.end()) unbound.emplace_back(*owner, pip);
  }
  return {};
}

void TunnelManager::pin_pip_locked(PeerIndex peer, const net::IpAddr& outer_ip) {
  if (pips_.at(peer)) return;
  pips_[peer] = outer_ip;
  log("peer " + peers_[peer].name + " bound to PIP " + outer_ip.to_string());
}

CResult<MultiTunnelResponse> TunnelManager::handle_tunnel_request(const Caller& caller,
                                                                  const MultiTunnelRequest& request) {
  auto version = negotiate(request.versions_accepted);
  if (!version) return Err{version.error()};
  std::unique_lock lock(mu_);
  if (auto ok = authorise_locked(caller, request); !ok) return Err{ok.error()};
  if (auto ok = check_request_locked(request); !ok) return Err{ok.error()};

  MultiTunnelResponse response;
  response.request_id = request.request_id;
  Undo undo;
  for (const TunnelRequest& t : request.tunnels) {
    auto params = serve_tunnel_locked(t, *version, undo);
    if (!params) {
      lock.unlock();
      if (undo.refresh && options_.on_refresh_due) options_.on_refresh_due();
      lock.lock();
      for (const VipPair& pair : undo.new_egress) {
        (void)data_plane_.remove_egress(pair);
        Session& s = *find_locked(pair);
        s.egress_spi.reset();
        count_active_locked(s);
        s.egress_outer.reset();
      }
      for (const auto& [pair, spi] : undo.opened) close_ingress_locked(pair, *find_locked(pair), spi);
      for (const auto& [pair, spi] : undo.opened) forget_if_empty_locked(pair);
      return Err{params.error()};
    }
    response.tunnels.push_back(std::move(params.value()));
  }
  // Committed: a peer cannot grow a session's SPIs beyond the bound; its params are now our egress.
  for (const auto& [pair, spi] : undo.opened) trim_ingress_locked(pair, *find_locked(pair));
  for (const TunnelRequest& t : request.tunnels) {
    Session& s = *find_locked(VipPair{t.responder_vip, t.requester_vip});
    s.moved_at = now();  // the peer moves to the SPI we answer with when the answer arrives
    if (t.reverse_params) ++s.served_egress;
  }
  for (const TunnelRequest& t : request.tunnels) {
    if (t.reverse_params)
      pin_pip_locked(*owner_locked({t.responder_vip, t.requester_vip}), t.reverse_params->outer_ip);
  }
  lock.unlock();
  if (undo.refresh && options_.on_refresh_due) options_.on_refresh_due();
  return response;
}

CResult<TunnelParams> TunnelManager::serve_tunnel_locked(const TunnelRequest& t, psp::PspVersion v,
                                                         Undo& undo) {
  const VipPair pair{t.responder_vip, t.requester_vip};
  const PairId id = pairs_.find(pair);  // allowed: check_request_locked
  Session& s = session_locked(id, slots_[id].owner);
  auto params = issue_params_locked(pair, v, s);
  if (!params) return params;
  undo.opened.emplace_back(pair, params->spi);
  if (t.reverse_params) {  // the requester's params: install egress now, saving a round trip (spec §2)
    // A pair we already hold is replaced, whatever state it was in: the peer (restarted, re-keying, or
    // racing our own exchange) now sends with the SPI issued above and listens on these params. Our
    // previous ingress SPI stays open until the next commit trims to two, for packets in flight.
    const bool had_egress = s.egress_spi.has_value();
    const TunnelParams& r = *t.reverse_params;
    TunnelParams copy{r.mac, r.outer_ip, clone_key(r.key), r.spi, r.virt_cookie};
    if (auto ok = install_egress_locked(pair, s, copy); !ok) return Err{ok.error()};
    if (!had_egress) undo.new_egress.push_back(pair);
    s.refresh_due = false;
    s.backoff = {};
    s.retry_at = {};
  } else if (s.egress_spi && !s.in_flight && !s.refresh_due) {
    // The peer asks afresh for a pair whose egress we hold: it lost its state (a restarted static-mode
    // peer), so our egress SPI is probably dead. Re-exchange at once; the old egress stays until then.
    s.refresh_due = true;
    peer_state_[s.peer].refresh_pending = true;
    undo.refresh = true;
  }
  return params;
}

// Allocates an SPI of the active slot, derives its key and opens the ingress ACL for it.
CResult<TunnelParams> TunnelManager::issue_params_locked(const VipPair& pair, psp::PspVersion v, Session& s) {
  auto spi = keys_.allocate_spi();
  if (!spi) {
    return fail(ControlError::kResourceExhausted, "no SPI left: " + std::string(psp::to_string(spi.error())));
  }
  auto key = keys_.derive(*spi, v);
  if (!key)
    return fail(ControlError::kInternal, "key derivation: " + std::string(psp::to_string(key.error())));
  if (auto ok = data_plane_.open_ingress(*spi, pair.remote, pair.local); !ok) {
    return data_plane_failure("opening ingress", pair, ok.error());
  }
  s.ingress.insert(s.ingress.begin(), Session::Ingress{*spi, keys_.generation()});
  count_active_locked(s);
  log_key("issued", pair, *spi, *key);
  return TunnelParams{options_.local.mac, options_.local.outer_ip, std::move(key.value()), *spi,
                      options_.local.virt_cookie};
}

CStatus TunnelManager::install_egress_locked(const VipPair& pair, Session& s, const TunnelParams& params) {
  TxSa sa{params.outer_ip, params.mac, params.spi, clone_key(params.key), params.virt_cookie};
  if (auto ok = data_plane_.install_egress(pair, std::move(sa)); !ok) {
    return data_plane_failure("installing egress", pair, ok.error());
  }
  s.egress_spi = params.spi;
  count_active_locked(s);
  s.egress_outer = params.outer_ip;
  peer_state_[s.peer].outer = params.outer_ip;
  log_key("installed egress", pair, params.spi, params.key);
  return {};
}

void TunnelManager::close_ingress_locked(const VipPair& pair, Session& s, uint32_t spi) {
  auto it = std::find_if(s.ingress.begin(), s.ingress.end(),
                         [&](const Session::Ingress& i) { return i.spi == spi; });
  if (it == s.ingress.end()) return;
  s.ingress.erase(it);
  count_active_locked(s);
  if (auto ok = data_plane_.close_ingress(spi, pair.remote, pair.local); !ok) {
    log("closing ingress SPI " + std::to_string(spi) + " for " + describe(pair) +
        " failed: " + std::string(to_string(ok.error())));
  }
}

CStatus TunnelManager::admit_rotation_locked(const Caller& caller) {
  if (caller.peers.empty()) return fail(ControlError::kPermissionDenied, "not a configured peer");
  const Clock::duration interval = options_.peer_rotation_interval;
  for (PeerIndex p : caller.peers) {
    const auto& last = last_peer_rotation_.at(p);
    if (!last || interval <= Clock::duration::zero() || now() - *last >= interval) continue;
    const auto wait = std::chrono::duration_cast<std::chrono::seconds>(*last + interval - now()).count() + 1;
    log_refusal_locked("refused key rotation requested by " + describe_caller(caller) +
                       ": rate limit, next in " + std::to_string(wait) + " s");
    return fail(ControlError::kResourceExhausted,
                "key rotation rate limit: one per " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(interval).count()) +
                    " s per peer; try again in " + std::to_string(wait) + " s");
  }
  for (PeerIndex p : caller.peers) last_peer_rotation_[p] = now();
  return {};
}

CResult<KeyRotationResponse> TunnelManager::handle_key_rotation(const Caller& caller,
                                                                const KeyRotationRequest& request) {
  std::unique_lock rotating(rotation_mu_, std::try_to_lock);  // at most one peer-triggered rotation
  if (!rotating.owns_lock()) return fail(ControlError::kResourceExhausted, "a key rotation is in progress");
  {
    std::lock_guard lock(mu_);
    if (auto ok = admit_rotation_locked(caller); !ok) return Err{ok.error()};
  }
  // Paced like pspctl's: a rotation while re-keys are pending is deferred (the peer only asks us to
  // rotate; when is ours to decide). Re-keys follow every rotation; issue_new_keys starts them now.
  const RotationOutcome r = request_rotation();
  if (request.issue_new_keys && !r.deferred && r.report.rekey_due > 0 && options_.on_rekey_due)
    options_.on_rekey_due();
  return KeyRotationResponse{request.request_id};
}

// A token bucket per peer: kCloseBurst requests at once, then kClosePerSecond.
CStatus TunnelManager::admit_close_locked(const Caller& caller) {
  if (caller.peers.empty()) return fail(ControlError::kPermissionDenied, "not a configured peer");
  const Clock::time_point t = now();
  for (PeerIndex p : caller.peers) {
    CloseBudget& b = close_budget_.at(p);
    if (b.at != Clock::time_point{}) {
      const double refill = std::chrono::duration<double>(t - b.at).count() * kClosePerSecond;
      b.tokens = std::min(kCloseBurst, b.tokens + refill);
    }
    b.at = t;
  }
  for (PeerIndex p : caller.peers) {
    if (close_budget_[p].tokens < 1) {
      log_refusal_locked("refused CloseTunnels from " + describe_caller(caller) + ": rate limit");
      return fail(ControlError::kResourceExhausted,
                  "CloseTunnels rate limit: " + std::to_string(static_cast<int>(kClosePerSecond)) +
                      " requests a second per peer");
    }
  }
  for (PeerIndex p : caller.peers) close_budget_[p].tokens -= 1;
  return {};
}

CResult<CloseTunnelsResponse> TunnelManager::handle_close_request(const Caller& caller,
                                                                  const CloseTunnelsRequest& request) {
  if (request.tunnels.size() > kMaxClosePerRequest) {
    return fail(ControlError::kInvalidArgument, std::to_string(request.tunnels.size()) +
                                                    " tunnels in one CloseTunnels, at most " +
                                                    std::to_string(kMaxClosePerRequest));
  }
  std::lock_guard lock(mu_);
  if (auto ok = admit_close_locked(caller); !ok) return Err{ok.error()};
  std::vector<VipPair> pairs;
  pairs.reserve(request.tunnels.size());
  for (const TunnelClose& t : request.tunnels) {
    const VipPair pair{t.responder_vip, t.requester_vip};
    const std::optional<PeerIndex> owner = owner_locked(pair);
    if (owner && !caller.may_act_for(*owner)) {
      log_refusal_locked("refused CloseTunnels from " + describe_caller(caller) + ": " + describe(pair) +
                         " is another peer's");
      return fail(ControlError::kPermissionDenied, describe(pair) + " is not yours to close");
    }
    Session* s = find_locked(pair);
    if (s != nullptr && caller.may_act_for(s->peer)) pairs.push_back(pair);
  }
  const std::size_t closed = close_pairs_locked(pairs);
  if (closed > 0) {
    log("closed " + std::to_string(closed) + " tunnel(s) that " + describe_caller(caller) +
        " closed on its side (CloseTunnels)");
  }
  return CloseTunnelsResponse{request.request_id, static_cast<uint32_t>(closed)};
}

std::vector<std::string> TunnelManager::notify_closed(
    const std::vector<std::pair<PeerIndex, VipPair>>& closed, PeerTransport& transport) {
  std::map<PeerIndex, std::vector<CloseTunnelsRequest>> by_peer;
  std::map<PeerIndex, std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [peer, pair] : closed) {
      auto& requests = by_peer[peer];
      if (requests.empty() || requests.back().tunnels.size() == kMaxClosePerRequest)
        requests.push_back(CloseTunnelsRequest{next_request_id_++, {}});
      requests.back().tunnels.push_back({pair.local, pair.remote});
      names[peer] = peer < peers_.size() ? peers_[peer].name : "#" + std::to_string(peer);
    }
  }
  // In parallel: an unreachable peer costs the reload one RPC deadline, not one per peer.
  std::vector<std::future<std::string>> sent;
  sent.reserve(by_peer.size());
  for (auto& [peer, requests] : by_peer) {
    sent.push_back(std::async(
        std::launch::async, [&transport, peer = peer, requests = std::move(requests), name = names[peer]] {
          for (const auto& r : requests) {
            auto answer = transport.close_tunnels(peer, r);
            if (!answer) {
              return "peer " + name + " did not close its half of " + std::to_string(r.tunnels.size()) +
                     " tunnel(s): " + std::string(to_string(answer.error().code)) + ": " +
                     answer.error().message +
                     (answer.error().code == ControlError::kUnimplemented
                          ? " (a DOCA gateway: its half goes by its own idle rules)"
                          : "");
            }
          }
          return std::string();
        }));
  }
  std::vector<std::string> failed;
  for (auto& f : sent) {
    if (std::string line = f.get(); !line.empty()) failed.push_back(std::move(line));
  }
  return failed;
}

// ---------------------------------------------------------------------------------------------------
// Client side.

CResult<PendingExchange> TunnelManager::begin_exchange(const VipPair& pair) {
  std::lock_guard lock(mu_);
  return begin_locked(pair, false);
}

CResult<PendingExchange> TunnelManager::begin_exchange(std::span<const VipPair> pairs,
                                                       std::vector<std::pair<VipPair, Error>>& refused) {
  std::lock_guard lock(mu_);
  std::optional<PendingExchange> x;
  std::optional<Error> first_error;
  for (const VipPair& pair : pairs) {
    if (x && x->pairs.size() >= options_.client_request_chunk) {
      refused.emplace_back(pair,
                           Error{ControlError::kResourceExhausted, "more pairs than one request carries"});
      continue;
    }
    if (x) {
      const std::optional<PeerIndex> peer = owner_locked(pair);
      if (peer && *peer != x->peer) {
        refused.emplace_back(pair, Error{ControlError::kInvalidArgument,
                                         describe(pair) + ": of another peer than the batch's"});
        continue;
      }
    }
    auto one = begin_locked(pair, false);
    if (!one) {
      refused.emplace_back(pair, one.error());
      if (!first_error) first_error = one.error();
      continue;
    }
    if (!x) {
      x = std::move(one.value());
      continue;
    }
    // One request, one token: the sessions of the batch answer to the batch's exchange.
    find_locked(pair)->token = x->token;
    x->pairs.push_back(pair);
    x->request.tunnels.push_back(std::move(one->request.tunnels.front()));
  }
  if (!x) return Err{first_error.value_or(Error{ControlError::kInvalidArgument, "no pairs"})};
  return std::move(*x);
}

CResult<PendingExchange> TunnelManager::begin_locked(const VipPair& pair, bool rekey) {
  const PairId id = pairs_.find(pair);
  if (id == PairTable::kNone) {
    return fail(ControlError::kNotFound, "no peer is configured for " + describe(pair));
  }
  const PeerIndex peer = slots_[id].owner;
  Session* existing = find_locked(pair);
  if (existing && existing->in_flight)
    return fail(ControlError::kAlreadyExists, describe(pair) + ": in flight");
  if (rekey && (!existing || !existing->rekey_due)) {
    return fail(ControlError::kNotFound, describe(pair) + ": no re-key due");
  }
  if (!rekey && existing && existing->egress_spi) {
    return fail(ControlError::kAlreadyExists, describe(pair) + ": connected");
  }
  if (existing && now() < existing->retry_at)
    return fail(ControlError::kFailedPrecondition, describe(pair) + ": backing off");
  if ((!existing || !existing->active()) && over_tunnel_limit_locked(1)) {
    return fail(ControlError::kResourceExhausted,
                "tunnel limit reached (" + std::to_string(options_.max_tunnels) + ")");
  }
  Session& s = session_locked(id, peer);
  auto params = issue_params_locked(pair, options_.version, s);  // ingress open BEFORE the request (spec §2)
  if (!params) {
    forget_if_empty_locked(pair);
    return Err{params.error()};
  }
  PendingExchange x;
  x.peer = peer;
  x.request.request_id = next_request_id_++;
  x.request.versions_accepted = {static_cast<uint32_t>(options_.version)};
  x.request.tunnels.push_back(TunnelRequest{pair.local, pair.remote, std::move(params.value())});
  x.pairs = {pair};
  x.token = next_token_++;
  x.rekey = rekey;
  s.in_flight = true;
  count_active_locked(s);
  s.token = x.token;
  s.served_at_begin = s.served_egress;
  return x;
}

CResult<PendingExchange> TunnelManager::begin_static(PeerIndex peer, std::size_t* cursor) {
  std::lock_guard lock(mu_);
  if (peer >= peers_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  PendingExchange x;
  x.peer = peer;
  x.on_demand = false;
  x.token = next_token_++;
  x.request.request_id = next_request_id_++;
  x.request.versions_accepted = {static_cast<uint32_t>(options_.version)};
  std::size_t fresh = 0;
  const std::vector<PairId>& pairs = peers_[peer].pairs;
  std::size_t i = cursor ? std::min(*cursor, pairs.size()) : 0;
  for (; i < pairs.size() && x.pairs.size() < options_.client_request_chunk; ++i) {
    const VipPair& pair = pairs_.key(pairs[i]);  // the rest in the next request
    const Session* s = session_at(pairs[i]);
    if (s && (s->in_flight || s->egress_spi)) continue;
    if (!s || !s->active()) ++fresh;
    x.pairs.push_back(pair);
    x.request.tunnels.push_back(TunnelRequest{pair.local, pair.remote, std::nullopt});  // no reverse params
  }
  if (cursor) *cursor = i;
  if (x.pairs.empty())
    return fail(ControlError::kAlreadyExists, peers_[peer].name + ": all tunnels connected");
  if (over_tunnel_limit_locked(fresh)) {
    return fail(ControlError::kResourceExhausted,
                "tunnel limit reached (" + std::to_string(options_.max_tunnels) + ")");
  }
  for (const VipPair& pair : x.pairs) {
    Session& s = session_locked(pairs_.find(pair), peer);
    s.in_flight = true;
    count_active_locked(s);
    s.token = x.token;
    s.served_at_begin = s.served_egress;
  }
  return x;
}

CStatus TunnelManager::finish_exchange(PendingExchange x, CResult<MultiTunnelResponse> answer) {
  std::lock_guard lock(mu_);
  // Sessions closed while the exchange was in flight (a close, a reconfiguration) are left out of it: the
  // rest of a batch still gets its answer.
  std::vector<bool> gone(x.pairs.size(), false);
  std::size_t n_gone = 0;
  for (std::size_t i = 0; i < x.pairs.size(); ++i) {
    const Session* s = find_locked(x.pairs[i]);
    if (!s || s->token != x.token) {
      gone[i] = true;
      ++n_gone;
    }
  }
  if (n_gone == x.pairs.size()) {
    return fail(ControlError::kNotFound,
                describe(x.pairs.front()) + ": session closed while the exchange was in flight");
  }
  const std::size_t asked = x.pairs.size();
  const auto drop_gone = [&](auto& items) {
    std::size_t k = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (!gone[i]) items[k++] = std::move(items[i]);
    }
    items.resize(k);
  };
  if (n_gone > 0) {
    drop_gone(x.pairs);
    drop_gone(x.request.tunnels);
  }
  if (!answer) return fail_exchange_locked(x, answer.error());
  MultiTunnelResponse& response = answer.value();
  if (response.request_id != x.request.request_id || response.tunnels.size() != asked) {
    return fail_exchange_locked(
        x, Error{ControlError::kInternal,
                 peers_[x.peer].name + " answered request " + std::to_string(x.request.request_id) +
                     " with id " + std::to_string(response.request_id) + " and " +
                     std::to_string(response.tunnels.size()) + " tunnels for " + std::to_string(asked)});
  }
  if (n_gone > 0) drop_gone(response.tunnels);
  CStatus result;
  for (std::size_t i = 0; i < x.pairs.size(); ++i) {
    const TunnelParams& params = response.tunnels[i];
    Session& s = *find_locked(x.pairs[i]);
    CStatus ok;
    if (params.version() != options_.version) {
      ok = fail(ControlError::kInternal, peers_[x.peer].name + " chose PSP version " +
                                             std::to_string(static_cast<int>(params.version())) +
                                             ", not offered");
    } else if (s.served_egress == s.served_at_begin || !s.egress_spi) {
      ok = check_pip_locked(x.peer, params.outer_ip);  // a pair's traffic goes to its peer's PIP only
      if (ok) ok = install_egress_locked(x.pairs[i], s, params);
      if (ok) pin_pip_locked(x.peer, params.outer_ip);
    }  // else the peer's own request, served meanwhile, is newer: keep its params (header comment)
    if (!ok) {
      PendingExchange one;
      one.peer = x.peer;
      one.on_demand = x.on_demand;
      one.rekey = x.rekey;
      one.pairs = {x.pairs[i]};
      if (x.on_demand)
        one.request.tunnels.push_back(TunnelRequest{{}, {}, std::move(x.request.tunnels[i].reverse_params)});
      (void)fail_exchange_locked(one, ok.error());
      if (result) result = ok;
      continue;
    }
    s.in_flight = false;
    count_active_locked(s);
    s.refresh_due = false;
    s.backoff = {};
    s.retry_at = {};
    if (x.on_demand) confirm_locked(x.pairs[i], s, x.request.tunnels[i].reverse_params->spi);
  }
  return result;
}

// The peer installed `spi` (our request's reverse params): it never goes back to an older SPI, so those
// retire; the session is re-keyed once more if `spi` is not of the current key generation.
void TunnelManager::confirm_locked(const VipPair& pair, Session& s, uint32_t spi) {
  auto it = std::find_if(s.ingress.begin(), s.ingress.end(),
                         [&](const Session::Ingress& i) { return i.spi == spi; });
  s.moved_at = now();
  s.rekey_due = it == s.ingress.end() || it->generation != keys_.generation();
  if (s.rekey_due) due_queue_.push_back(pair);
  if (it == s.ingress.end()) return;
  for (auto old = std::next(it); old != s.ingress.end(); ++old) {
    if (old->retiring) continue;
    old->retiring = true;
    retiring_.push_back({now() + options_.retire_delay, pair, old->spi});
  }
  trim_ingress_locked(pair, s);
}

// Keeps at most kMaxIngressPerSession SPIs open: retiring ones go first, then the oldest.
void TunnelManager::trim_ingress_locked(const VipPair& pair, Session& s) {
  while (s.ingress.size() > kMaxIngressPerSession) {
    auto victim = std::find_if(s.ingress.rbegin(), s.ingress.rend(),
                               [](const Session::Ingress& i) { return i.retiring; });
    close_ingress_locked(pair, s, victim != s.ingress.rend() ? victim->spi : s.ingress.back().spi);
  }
}

CStatus TunnelManager::fail_exchange_locked(const PendingExchange& x, const Error& error) {
  for (std::size_t i = 0; i < x.pairs.size(); ++i) {
    Session& s = *find_locked(x.pairs[i]);
    s.in_flight = false;
    count_active_locked(s);
    if (x.on_demand && x.request.tunnels[i].reverse_params) {
      close_ingress_locked(x.pairs[i], s, x.request.tunnels[i].reverse_params->spi);  // nobody will use it
    }
    s.backoff = options_.backoff.next(s.backoff);
    if (x.rekey) s.backoff = std::min(s.backoff, options_.rekey_retry_max);
    s.retry_at = now() + s.backoff;
    if (x.rekey) {
      ++round_.failures;  // summarised by report_rekeys_locked: no line per tunnel at scale
    } else {
      log("key exchange with " + peers_[x.peer].name + " for " + describe(x.pairs[i]) + " failed (" +
          std::string(to_string(error.code)) + ": " + error.message + "); retry in " + ms_text(s.backoff));
    }
    forget_if_empty_locked(x.pairs[i]);
  }
  return Err{error};
}

CStatus TunnelManager::connect(const VipPair& pair, PeerTransport& transport) {
  auto x = begin_exchange(pair);
  if (!x) {
    // Connected already is done: the peer's exchange for the same pair may have come first and installed
    // our egress from its reverse_params (a simultaneous open), or an earlier connect did.
    if (x.error().code == ControlError::kAlreadyExists) {
      std::lock_guard lock(mu_);
      const Session* s = find_locked(pair);
      if (s != nullptr && s->egress_spi) return {};
    }
    return Err{x.error()};
  }
  auto answer = transport.request_tunnels(x->peer, x->request);  // no lock held
  return finish_exchange(std::move(x.value()), std::move(answer));
}

CStatus TunnelManager::connect_peer_static(PeerIndex peer, PeerTransport& transport) {
  std::size_t cursor = 0;
  for (;;) {  // one request per client_request_chunk pairs, until all are connected or one fails
    auto x = begin_static(peer, &cursor);
    if (!x) return x.error().code == ControlError::kAlreadyExists ? CStatus{} : CStatus{Err{x.error()}};
    if (auto ok = run_exchange(std::move(x), transport); !ok) return ok;
  }
}

CStatus TunnelManager::run_exchange(CResult<PendingExchange> x, PeerTransport& transport) {
  if (!x) return Err{x.error()};
  auto answer = transport.request_tunnels(x->peer, x->request);  // no lock held
  return finish_exchange(std::move(x.value()), std::move(answer));
}

// ---------------------------------------------------------------------------------------------------
// Stale peers.

bool TunnelManager::note_stale_peer(PeerIndex peer, std::string_view why) {
  std::size_t marked = 0;
  {
    std::lock_guard lock(mu_);
    if (peer >= peers_.size() || peer_state_[peer].removed) return false;
    PeerState& ps = peer_state_[peer];
    const Clock::time_point t = now();
    if (t < ps.next_stale) return false;
    // Spacing doubles while signals keep coming as soon as allowed (a restart's burst is over after one
    // refresh; a flood is not), and falls back to the interval once the peer was quiet for a spacing.
    const bool recent = ps.stale_spacing > Clock::duration::zero() && t < ps.next_stale + ps.stale_spacing;
    ps.stale_spacing =
        recent ? std::min(ps.stale_spacing * 2, options_.stale_refresh_max) : options_.stale_refresh_interval;
    ps.next_stale = t + ps.stale_spacing;
    for (const PairId id : peers_[peer].pairs) {
      Session* s = session_at(id);
      if (s == nullptr || !s->egress_spi || s->refresh_due) continue;
      s->refresh_due = true;
      ++marked;
    }
    if (marked > 0) {
      ps.refresh_pending = true;
    } else if (!ps.refresh_pending) {
      ps.static_due = true;
    }
    log(peers_[peer].name + " may have restarted (" + std::string(why) + "): " +
        (marked > 0           ? "re-exchanging " + std::to_string(marked) + " tunnel(s)"
         : ps.refresh_pending ? "a re-exchange is due already"
                              : "connecting its tunnels"));
  }
  if (options_.on_refresh_due) options_.on_refresh_due();
  return true;
}

std::vector<PeerIndex> TunnelManager::refresh_due_peers() const {
  std::lock_guard lock(mu_);
  std::vector<PeerIndex> due;
  for (PeerIndex p = 0; p < peer_state_.size(); ++p) {
    if (peer_state_[p].refresh_pending) due.push_back(p);
  }
  return due;
}

std::vector<PeerIndex> TunnelManager::take_static_due() {
  std::lock_guard lock(mu_);
  std::vector<PeerIndex> due;
  for (PeerIndex p = 0; p < peer_state_.size(); ++p) {
    if (std::exchange(peer_state_[p].static_due, false)) due.push_back(p);
  }
  return due;
}

std::optional<PeerIndex> TunnelManager::peer_by_outer(const net::IpAddr& outer) const {
  std::lock_guard lock(mu_);
  for (PeerIndex p = 0; p < peer_state_.size(); ++p) {
    if (!peer_state_[p].removed && peer_state_[p].outer == outer) return p;
  }
  return std::nullopt;
}

// Up to client_request_chunk of the peer's refresh-due sessions, each with a fresh ingress SPI as
// reverse params (the peer installs it and answers with its own params: one round trip renews both
// directions). Sessions no longer connected are left to the ordinary paths.
CResult<PendingExchange> TunnelManager::begin_refresh(PeerIndex peer) {
  std::lock_guard lock(mu_);
  if (peer >= peers_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  PendingExchange x;
  x.peer = peer;
  x.token = next_token_++;
  x.request.request_id = next_request_id_++;
  x.request.versions_accepted = {static_cast<uint32_t>(options_.version)};
  bool waiting = false;  // due, but in flight or backing off: not done yet
  for (const PairId id : peers_[peer].pairs) {
    if (x.pairs.size() == options_.client_request_chunk) break;
    const VipPair& pair = pairs_.key(id);
    Session* s = session_at(id);
    if (s == nullptr || !s->refresh_due) continue;
    if (!s->egress_spi) {
      s->refresh_due = false;
      continue;
    }
    if (s->in_flight || now() < s->retry_at) {
      waiting = true;
      continue;
    }
    // At most two ingress SPIs per session, also while the request is out (no extra table room needed):
    // the newest stays open for the peer if it did not restart after all, older ones it cannot be using.
    while (s->ingress.size() >= kMaxIngressPerSession) close_ingress_locked(pair, *s, s->ingress.back().spi);
    auto params = issue_params_locked(pair, options_.version, *s);
    if (!params) {
      if (x.pairs.empty()) return Err{params.error()};
      break;
    }
    s->in_flight = true;
    count_active_locked(*s);
    s->token = x.token;
    s->served_at_begin = s->served_egress;  // a peer's request served meanwhile is newer (finish_exchange)
    x.pairs.push_back(pair);
    x.request.tunnels.push_back(TunnelRequest{pair.local, pair.remote, std::move(params.value())});
  }
  if (x.pairs.empty()) {
    peer_state_[peer].refresh_pending = waiting;
    return fail(ControlError::kAlreadyExists, peers_[peer].name + ": nothing to refresh");
  }
  return x;
}

CStatus TunnelManager::refresh_peer(PeerIndex peer, PeerTransport& transport) {
  for (;;) {
    auto x = begin_refresh(peer);
    if (!x) return x.error().code == ControlError::kAlreadyExists ? CStatus{} : CStatus{Err{x.error()}};
    if (auto ok = run_exchange(std::move(x), transport); !ok) return ok;
  }
}

StaticReport TunnelManager::connect_all_static(PeerTransport& transport, const StaticOptions& options) {
  StaticReport report;
  std::vector<PeerIndex> pending;
  {
    std::lock_guard lock(mu_);  // reconfigure may change the table
    for (PeerIndex p = 0; p < peers_.size(); ++p) {
      if (!peers_[p].pairs.empty()) pending.push_back(p);
    }
  }
  Clock::duration delay{};
  while (!pending.empty()) {
    if (options.max_rounds != 0 && report.rounds == options.max_rounds) break;
    if (report.rounds > 0) {  // a round per pass over the failed peers, backing off between rounds
      delay = options_.backoff.next(delay);
      if (options.sleep) {
        options.sleep(delay);
      } else {
        std::this_thread::sleep_for(delay);
      }
    }
    if (options.should_stop && options.should_stop()) break;
    ++report.rounds;
    std::vector<PeerIndex> failed;
    for (PeerIndex p : pending) {
      report.attempts.push_back(p);
      if (!connect_peer_static(p, transport)) failed.push_back(p);
    }
    pending = std::move(failed);
  }
  report.failed = std::move(pending);
  return report;
}

// ---------------------------------------------------------------------------------------------------
// Keys.

RotationReport TunnelManager::rotate_master_key() {
  std::lock_guard lock(mu_);
  return rotate_locked();
}

RotationReport TunnelManager::rotate_locked() {
  RotationReport report;
  for_each_session_locked([&](const VipPair&, Session& s) { report.lost += s.rekey_due ? 1 : 0; });
  keys_.rotate_random();
  data_plane_.publish_master_keys(keys_.snapshot());
  report.generation = keys_.generation();
  std::vector<VipPair> lost, empty;
  for_each_session_locked([&](const VipPair& pair, Session& s) {
    std::vector<uint32_t> dead;
    for (const Session::Ingress& i : s.ingress) {
      if (i.generation + 2 <= report.generation) dead.push_back(i.spi);
    }
    for (uint32_t spi : dead) close_ingress_locked(pair, s, spi);
    report.closed_ingress += dead.size();
    // Every SPI still open is of the now-previous slot (the new active slot has issued none yet), and the
    // peer sends with one of them: it must move to the new slot before the next rotation.
    s.rekey_due = !s.ingress.empty();
    report.rekey_due += s.rekey_due ? 1 : 0;
    if (!dead.empty() && s.ingress.empty() && !s.in_flight) {
      lost.push_back(pair);  // the peer's SPI died: close it all, traffic re-makes it on demand
    } else if (!s.active()) {
      empty.push_back(pair);
    }
  });
  for (const VipPair& pair : lost) close_locked(pair, *find_locked(pair));
  for (const VipPair& pair : empty) erase_session_locked(pair);
  report.closed = lost.size();
  last_rotation_ = now();
  due_queue_.clear();
  for_each_session_locked([&](const VipPair& pair, const Session& s) {
    if (s.rekey_due) due_queue_.push_back(pair);
  });
  round_ = RekeyRound{report.rekey_due > 0,      report.generation, now(), report.rekey_due, 0,
                      now() + kRekeyReportPeriod};
  log("master key rotated (generation " + std::to_string(report.generation) +
      "): " + std::to_string(report.closed_ingress) + " ingress entries closed, " +
      std::to_string(report.rekey_due) + " tunnels to re-key" +
      (report.lost ? ", " + std::to_string(report.lost) + " not re-keyed in time (" +
                         std::to_string(report.closed) + " closed, re-made on demand)"
                   : ""));
  return report;
}

std::size_t TunnelManager::rekeys_pending_locked() const {
  std::size_t n = 0;
  for_each_session_locked([&](const VipPair&, const Session& s) { n += s.rekey_due ? 1 : 0; });
  return n;
}

std::size_t TunnelManager::rekeys_pending() const {
  std::lock_guard lock(mu_);
  return rekeys_pending_locked();
}

// A rotation must wait while re-keys of the previous one are pending, and while a peer moved away from an
// SPI that the rotation would kill less than retire_delay ago (its packets sealed with it may still be
// queued) — but not beyond rekey_window.
bool TunnelManager::rotation_blocked_locked(std::size_t& pending) const {
  pending = rekeys_pending_locked();
  if (now() - deferred_since_ >= options_.rekey_window) return false;
  if (pending > 0) return true;
  bool blocked = false;
  for_each_session_locked([&](const VipPair&, const Session& s) {
    if (blocked || now() - s.moved_at >= options_.retire_delay) return;
    for (const Session::Ingress& i : s.ingress) {
      if (i.generation < keys_.generation()) blocked = true;  // dies at the next rotation (rotate_locked)
    }
  });
  return blocked;
}

RotationOutcome TunnelManager::request_rotation() {
  std::lock_guard lock(mu_);
  if (queued_rotations_ == 0) deferred_since_ = now();
  std::size_t pending = 0;
  if (queued_rotations_ == 0 && !rotation_blocked_locked(pending)) return {false, rotate_locked(), 0};
  queued_rotations_ = std::min(queued_rotations_ + 1, kMaxQueuedRotations);
  log("key rotation deferred: " + std::to_string(pending) + " tunnels still re-keying after generation " +
      std::to_string(keys_.generation()) + " (" + std::to_string(queued_rotations_) + " queued)");
  RotationOutcome out{true, {}, pending};
  out.report.generation = keys_.generation();
  return out;
}

std::optional<RotationReport> TunnelManager::maintain_rotation() {
  std::lock_guard lock(mu_);
  retire_due_locked();
  report_rekeys_locked();
  const auto interval = options_.rotation_interval;
  if (queued_rotations_ == 0 && interval > Clock::duration::zero() && now() - last_rotation_ >= interval) {
    queued_rotations_ = 1;  // the timer's rotation, paced like a requested one
    deferred_since_ = now();
  }
  std::size_t pending = 0;
  if (queued_rotations_ == 0 || rotation_blocked_locked(pending)) return std::nullopt;
  --queued_rotations_;
  deferred_since_ = now();
  return rotate_locked();
}

// Closes superseded SPIs whose delay has passed (if still open: a rotation or trim may have closed them).
void TunnelManager::retire_due_locked() {
  while (!retiring_.empty() && retiring_.front().at <= now()) {
    const Retiring r = retiring_.front();
    retiring_.pop_front();
    if (Session* s = find_locked(r.pair)) {
      auto it = std::find_if(s->ingress.begin(), s->ingress.end(),
                             [&](const Session::Ingress& i) { return i.spi == r.spi && i.retiring; });
      if (it != s->ingress.end()) close_ingress_locked(r.pair, *s, r.spi);
    }
  }
}

// One line when the re-keys of a rotation are done; while some are not, one progress line per period.
void TunnelManager::report_rekeys_locked() {
  if (!round_.open) return;
  const std::size_t pending = rekeys_pending_locked();
  const std::string head = "re-key after generation " + std::to_string(round_.generation) + ": ";
  if (pending == 0) {
    round_.open = false;
    log(head + std::to_string(round_.due) + " tunnels re-keyed in " + ms_text(now() - round_.started) +
        (round_.failures ? " (" + std::to_string(round_.failures) + " failed tries retried)" : ""));
  } else if (now() >= round_.next_report) {
    round_.next_report = now() + kRekeyReportPeriod;
    log(head + std::to_string(pending) + " of " + std::to_string(round_.due) +
        " tunnels still pending after " + ms_text(now() - round_.started) + " (" +
        std::to_string(round_.failures) + " failed tries)");
  }
}

std::vector<VipPair> TunnelManager::rekey_due(std::size_t limit) const {
  std::lock_guard lock(mu_);
  std::vector<VipPair> due;
  // One pass at most; a pair goes to the back while its session is due, and leaves once it is not.
  for (std::size_t n = due_queue_.size(); n > 0 && due.size() < limit; --n) {
    const VipPair pair = due_queue_.front();
    due_queue_.pop_front();
    const PairId id = pairs_.find(pair);
    const Session* s = id == PairTable::kNone ? nullptr : session_at(id);
    if (s == nullptr || !s->rekey_due) continue;
    due_queue_.push_back(pair);
    if (!s->in_flight && now() >= s->retry_at) due.push_back(pair);
  }
  std::sort(due.begin(), due.end());
  due.erase(std::unique(due.begin(), due.end()), due.end());
  return due;
}

CStatus TunnelManager::rekey(const VipPair& pair, PeerTransport& transport) {
  CResult<PendingExchange> x = [&] {
    std::lock_guard lock(mu_);
    return begin_locked(pair, true);
  }();
  if (!x) return Err{x.error()};
  auto answer = transport.request_tunnels(x->peer, x->request);
  return finish_exchange(std::move(x.value()), std::move(answer));
}

CStatus TunnelManager::request_peer_rotation(PeerIndex peer, bool issue_new_keys, PeerTransport& transport) {
  uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    if (peer >= peers_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
    id = next_request_id_++;
  }
  auto answer = transport.request_key_rotation(peer, KeyRotationRequest{id, issue_new_keys});
  if (!answer) return Err{answer.error()};
  if (answer->request_id != id) {
    return fail(ControlError::kInternal, peer_name(peer) + " answered key rotation " + std::to_string(id) +
                                             " with id " + std::to_string(answer->request_id));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------------
// Sessions.

template <class F>
void TunnelManager::for_each_session_locked(F&& f) const {
  for (PairId id = 0; id < pairs_.id_limit(); ++id) {
    if (Session* s = session_at(id)) f(pairs_.key(id), *s);
  }
}

// The pair's id, made if new; the first owner of a pair stays its owner (the config rejects duplicates).
TunnelManager::PairId TunnelManager::intern_locked(const VipPair& pair, PeerIndex owner) {
  const auto [id, fresh] = pairs_.insert(pair);
  if (id >= slots_.size()) slots_.resize(id + 1);
  if (fresh) slots_[id] = PairSlot{static_cast<uint32_t>(owner), kNoSession};
  return id;
}

std::optional<PeerIndex> TunnelManager::owner_locked(const VipPair& pair) const {
  const PairId id = pairs_.find(pair);
  if (id == PairTable::kNone) return std::nullopt;
  return slots_[id].owner;
}

TunnelManager::Session* TunnelManager::find_locked(const VipPair& pair) {
  const PairId id = pairs_.find(pair);
  return id == PairTable::kNone ? nullptr : session_at(id);
}

TunnelManager::Session* TunnelManager::session_at(PairId id) const {
  const uint32_t i = slots_[id].session;
  return i == kNoSession ? nullptr : &session_blocks_[i / kSessionBlock][i % kSessionBlock];
}

// `id`: an allowed pair's.
TunnelManager::Session& TunnelManager::session_locked(PairId id, PeerIndex peer) {
  if (Session* s = session_at(id)) return *s;
  uint32_t i = 0;
  if (!free_sessions_.empty()) {
    i = free_sessions_.back();
    free_sessions_.pop_back();
  } else {
    if (sessions_made_ % kSessionBlock == 0)
      session_blocks_.push_back(std::make_unique<Session[]>(kSessionBlock));
    i = sessions_made_++;
  }
  slots_[id].session = i;
  Session& s = *session_at(id);
  s.peer = static_cast<uint32_t>(peer);
  s.active_at = now();
  return s;
}

void TunnelManager::erase_session_locked(const VipPair& pair) {
  const PairId id = pairs_.find(pair);
  if (id == PairTable::kNone || slots_[id].session == kNoSession) return;
  if (session_at(id)->counted) --active_;  // closed while in flight
  *session_at(id) = Session{};             // for the next session made: fresh, its SPI list freed
  free_sessions_.push_back(slots_[id].session);
  slots_[id].session = kNoSession;
}

void TunnelManager::forget_if_empty_locked(const VipPair& pair) {
  const Session* s = find_locked(pair);
  // A failed pair keeps its backoff state until the retry time has passed.
  if (s != nullptr && !s->active() && now() >= s->retry_at) erase_session_locked(pair);
}

// After every change of what active() reads: keeps active_ (the tunnel limit's count) in step, so that a
// check of the limit is not a pass over every session (one per pair of an on-demand batch: at 100,000
// tunnels that pass was most of the set-up time).
void TunnelManager::count_active_locked(Session& s) {
  const bool a = s.active();
  if (a == s.counted) return;
  s.counted = a;
  if (a) {
    ++active_;
  } else {
    --active_;
  }
}

// Whether `fresh` more active sessions would pass the tunnel limit: one comparison (count_active_locked).
bool TunnelManager::over_tunnel_limit_locked(std::size_t fresh) const {
  return active_ + fresh > options_.max_tunnels;
}

CStatus TunnelManager::close_session(const VipPair& pair) {
  std::lock_guard lock(mu_);
  Session* s = find_locked(pair);
  if (!s) return fail(ControlError::kNotFound, describe(pair) + ": no session");
  close_locked(pair, *s);
  return {};
}

void TunnelManager::close_locked(const VipPair& pair, Session& s) {
  while (!s.ingress.empty()) close_ingress_locked(pair, s, s.ingress.front().spi);
  if (s.egress_spi) {
    if (auto ok = data_plane_.remove_egress(pair); !ok) {
      log("removing egress for " + describe(pair) + " failed: " + std::string(to_string(ok.error())));
    }
  }
  erase_session_locked(pair);
}

std::size_t TunnelManager::expire_idle(const ActivityMap& activity, Clock::duration timeout) {
  std::lock_guard lock(mu_);
  std::vector<VipPair> idle;
  for_each_session_locked([&](const VipPair& pair, Session& s) {
    auto it = activity.find(pair);
    if (it != activity.end() && it->second != s.activity) {
      s.activity = it->second;
      s.active_at = now();
    } else if (!s.in_flight && now() - s.active_at >= timeout) {
      idle.push_back(pair);
    }
  });
  for (const VipPair& pair : idle) close_locked(pair, *find_locked(pair));
  if (!idle.empty()) {
    log(std::to_string(idle.size()) + " idle tunnel(s) closed (no packet for " + ms_text(timeout) + ")");
  }
  return idle.size();
}

SessionInfo TunnelManager::info_locked(const VipPair& pair, const Session& s) const {
  SessionInfo info{pair, s.peer, PairState::kIdle, {}, s.egress_spi, s.egress_outer, s.rekey_due, s.retry_at};
  for (const Session::Ingress& i : s.ingress) info.ingress_spis.push_back(i.spi);
  if (s.in_flight) {
    info.state = PairState::kInFlight;
  } else if (s.egress_spi) {
    info.state = PairState::kConnected;
  } else if (now() < s.retry_at) {
    info.state = PairState::kBackoff;
  }
  return info;
}

std::optional<SessionInfo> TunnelManager::session(const VipPair& pair) const {
  std::lock_guard lock(mu_);
  const PairId id = pairs_.find(pair);
  const Session* s = id == PairTable::kNone ? nullptr : session_at(id);
  if (s == nullptr) return std::nullopt;
  return info_locked(pair, *s);
}

std::vector<SessionInfo> TunnelManager::sessions() const {
  std::lock_guard lock(mu_);
  std::vector<SessionInfo> out;
  for_each_session_locked(
      [&](const VipPair& pair, const Session& s) { out.push_back(info_locked(pair, s)); });
  std::sort(out.begin(), out.end(),
            [](const SessionInfo& a, const SessionInfo& b) { return a.pair < b.pair; });
  return out;
}

PairState TunnelManager::state(const VipPair& pair) const {
  auto info = session(pair);
  return info ? info->state : PairState::kIdle;
}

std::optional<net::IpAddr> TunnelManager::bound_pip(PeerIndex i) const {
  std::lock_guard lock(mu_);
  return pips_.at(i);
}

std::optional<PeerIndex> TunnelManager::peer_of(const VipPair& pair) const {
  std::lock_guard lock(mu_);  // reconfigure changes the table
  return owner_locked(pair);
}

std::size_t TunnelManager::peer_count() const {
  std::lock_guard lock(mu_);
  return peers_.size();
}

std::string TunnelManager::peer_name(PeerIndex i) const {
  std::lock_guard lock(mu_);
  return peers_.at(i).name;
}

PeerPolicy TunnelManager::peer(PeerIndex i) const {
  std::lock_guard lock(mu_);
  const Peer& p = peers_.at(i);
  PeerPolicy out{p.name, {}, p.pip, p.outer_hint};
  out.pairs.reserve(p.pairs.size());
  for (const PairId id : p.pairs) out.pairs.push_back(pairs_.key(id));
  return out;
}

bool TunnelManager::removed(PeerIndex i) const {
  std::lock_guard lock(mu_);
  return peer_state_.at(i).removed;
}

// ---------------------------------------------------------------------------------------------------
// Reconfiguration (header comment).

ReconfigureReport TunnelManager::reconfigure(std::vector<PeerPolicy> peers,
                                             const std::vector<net::IpAddr>& moved_vips) {
  std::lock_guard lock(mu_);
  ReconfigureReport report;
  std::unordered_map<VipPair, PeerIndex, VipPairHash> allowed;  // the new allow list
  std::vector<bool> kept(peers_.size(), false);
  std::vector<VipPair> closing;
  const auto close_all = [&](PeerIndex i) {
    for (const PairId id : peers_[i].pairs) closing.push_back(pairs_.key(id));
  };
  std::vector<std::pair<PeerIndex, std::vector<VipPair>>> next_pairs;
  for (PeerPolicy& next : peers) {
    const PeerIndex i = slot_for_locked(next.name, report);
    if (i >= kept.size()) kept.resize(i + 1, false);
    kept[i] = true;
    report.index.push_back(i);
    if (next.pip != peers_[i].pip) {  // a configured PIP that changed: its tunnels go to the old one
      close_all(i);
      pips_[i] = next.pip;
      peer_state_[i].outer = next.pip ? next.pip : next.outer_hint;
    } else if (!peer_state_[i].outer) {
      peer_state_[i].outer = next.outer_hint;
    }
    for (const VipPair& pair : next.pairs) allowed.emplace(pair, i);
    peers_[i].name = std::move(next.name);
    peers_[i].pip = next.pip;
    peers_[i].outer_hint = next.outer_hint;
    next_pairs.emplace_back(i, std::move(next.pairs));
  }
  for (PeerIndex i = 0; i < peers_.size(); ++i) {
    if (kept[i] || peer_state_[i].removed) continue;
    report.removed.push_back(i);
    close_all(i);
    peers_[i].pairs.clear();
    peer_state_[i] = PeerState{};
    peer_state_[i].removed = true;
  }
  for (PairId id = 0; id < pairs_.id_limit(); ++id) {
    if (!pairs_.live(id)) continue;
    auto now_owner = allowed.find(pairs_.key(id));
    if (now_owner == allowed.end() || now_owner->second != slots_[id].owner) {
      closing.push_back(pairs_.key(id));
      ++report.pairs_removed;
    }
  }
  for (const auto& [pair, owner] : allowed) {
    const std::optional<PeerIndex> was = owner_locked(pair);
    if (!was || *was != owner) ++report.pairs_added;
  }
  for_each_session_locked([&](const VipPair& pair, const Session&) {
    if (std::find(moved_vips.begin(), moved_vips.end(), pair.local) != moved_vips.end())
      closing.push_back(pair);
  });
  last_closed_.clear();
  report.sessions_closed = close_pairs_locked(closing);
  report.closed = std::move(last_closed_);
  last_closed_.clear();
  // The table follows the new allow list: pairs no longer allowed leave it (their sessions closed above),
  // new ones join, moved ones change owner.
  for (PairId id = 0; id < pairs_.id_limit(); ++id) {
    if (!pairs_.live(id) || allowed.contains(pairs_.key(id))) continue;
    const VipPair pair = pairs_.key(id);
    erase_session_locked(pair);  // none left: closed above
    (void)pairs_.erase(pair);
    slots_[id] = PairSlot{};
  }
  for (auto& [i, list] : next_pairs) {
    peers_[i].pairs.clear();
    peers_[i].pairs.reserve(list.size());
    for (const VipPair& pair : list) {
      const PairId id = intern_locked(pair, i);
      slots_[id].owner = static_cast<uint32_t>(allowed.at(pair));
      peers_[i].pairs.push_back(id);
    }
    list = {};
  }
  report.peer_count = peers_.size();
  return report;
}

// The slot of the peer named `name`: its own, a removed one's of that name, or a new one at the end.
PeerIndex TunnelManager::slot_for_locked(const std::string& name, ReconfigureReport& report) {
  for (PeerIndex i = 0; i < peers_.size(); ++i) {
    if (peers_[i].name != name) continue;
    if (peer_state_[i].removed) {
      peer_state_[i] = PeerState{};
      peers_[i].pip.reset();  // so that a configured PIP is bound below
      pips_[i].reset();
      last_peer_rotation_[i].reset();
      close_budget_[i] = CloseBudget{};
      report.added.push_back(i);
    }
    return i;
  }
  peers_.push_back(Peer{name, {}, std::nullopt, std::nullopt});
  peer_state_.emplace_back();
  pips_.emplace_back();
  last_peer_rotation_.emplace_back();
  close_budget_.emplace_back();
  report.added.push_back(peers_.size() - 1);
  return peers_.size() - 1;
}

std::size_t TunnelManager::close_pairs_locked(const std::vector<VipPair>& pairs) {
  std::size_t closed = 0;
  for (const VipPair& pair : pairs) {
    Session* s = find_locked(pair);
    if (s == nullptr) continue;
    last_closed_.emplace_back(s->peer, pair);
    close_locked(pair, *s);
    ++closed;
  }
  return closed;
}

void TunnelManager::log(const std::string& line) const {
  options_.log(line);
}

// Keys reach the log only under --debug-keys (spec §4), in hex.
void TunnelManager::log_key(std::string_view what, const VipPair& pair, uint32_t spi,
                            const psp::DerivedKey& key) const {
  if (!options_.debug_keys) return;
  char spi_text[16];
  std::snprintf(spi_text, sizeof spi_text, "0x%08x", spi);
  log(std::string(what) + " " + describe(pair) + " SPI " + spi_text + " v" +
      std::to_string(static_cast<int>(key.version)) + " key " + to_hex(key.view()));
}

}  // namespace pspgw::control
