// TunnelManager: the control plane's policy core (spec §2 server and client behaviour, §5 slow path).
// It owns the master-key ring, the VIP-pair allow list taken from the config, and the per-pair session
// state; it programs flows through DataPlane and reaches peers through PeerTransport. No gRPC types.
//
// Sessions. A session is one (local VIP, remote VIP) pair. Its ingress side is the SPIs we handed to the
// peer (at most two open: current and previous, like the key slots); its egress side is the peer's SA.
// Tearing a session down closes its ingress ACLs and removes its egress (DOCA never frees them).
//
// Allow list. A peer may only obtain tunnels (remote VIP -> local VIP) that the config lists for it;
// DOCA installs whatever it is asked. Every VIP pair belongs to exactly one peer (the config rejects
// duplicates), so the pair names the peer.
//
// Authorisation (server side). Every request comes with the Caller the transport authenticated
// (peer_identity.hpp: its certificate, or in insecure mode its source address). A tunnel whose pair
// belongs to a peer the caller may not act for is refused with kPermissionDenied, and the whole request
// changes nothing; the refusal is logged naming the caller and the pair (rate-limited: a remote party
// triggers it).
//
// PIP binding. A pair's traffic only ever goes to its own peer's data-plane address (PIP). Each peer has
// one bound PIP: PeerPolicy::pip when configured (x-sw.peer-pips), otherwise the outer ip_addr of the
// first TunnelParameters we accept from that peer (its reverse_params, or the answer to our request),
// pinned for the life of the process. Afterwards reverse_params naming another address are refused
// (kPermissionDenied, nothing installed), and so is an answer to our own request that names another
// address (that pair fails and backs off). A peer that moves its PIP needs us restarted or configured.
//
// Peer-triggered rotation (RequestKeyRotation). At most one is in flight (a second concurrent request
// gets kResourceExhausted), and each peer may trigger one per peer_rotation_interval (default one a
// minute; kResourceExhausted above it, logged rate-limited). rotate_master_key (pspctl rotate-keys) is
// the operator's and is never limited.
//
// Closing on both sides (CloseTunnels, psp-gateway's own RPC: DOCA's service has none). When a reload
// closes tunnels, the gateway tells each peer that is still reachable which of its tunnels went
// (notify_closed); the peer closes its half. A DOCA peer answers kUnimplemented and keeps its half until
// its own rules age it out. A close request is authorised like an exchange (the caller's own pairs only).
//
// Re-keying (DOCA answers UNIMPLEMENTED to issue_new_keys). A rotation makes the active key slot the
// previous one; SPIs of the slot before that die. So after EVERY rotation (timer, pspctl, a peer's
// RequestKeyRotation, whatever its issue_new_keys) every session with an open ingress SPI is marked
// "re-key due": its peer sends with an SPI of the now-previous slot. A re-key is an ordinary on-demand
// exchange sent BY THE ROTATING SIDE: one tunnel whose reverse_params carry a fresh SPI of the new active
// slot (ingress opened before sending). The peer's server installs those params as its egress, exactly as
// for a first exchange, so a DOCA peer is re-keyed too and no new message is needed; the answer refreshes
// our egress as well. Make before break: the new SPI is open before the peer can use it, and the old one
// stays open until the peer has moved (below). The control thread runs due re-keys (rekey_due(), a few at
// a time) and retries failed ones with backoff capped at rekey_retry_max. issue_new_keys=true also wakes
// the control thread (on_rekey_due) so they start at once rather than at its next tick.
//
// Which SPI the peer sends with. After our exchange for a pair succeeds, the peer sends with the SPI of
// our request, or one we issued later: a client that served a request of its peer for the same pair while
// its own was in flight keeps the served params and ignores its answer's (the peer's request is what the
// peer counts as done; both SPIs stay open on the peer). So SPIs issued before the confirmed one are
// retired: closed retire_delay later (packets sealed with them may still be queued), and a session is
// re-keyed when the confirmed SPI is not of the current key generation.
//
// Rotation pacing. A rotation (timer or request) while re-keys of the previous one are pending is deferred
// until they are done, so a rotation never kills the SPI a peer is still sending with; and while a peer
// moved off an SPI the rotation would kill less than retire_delay ago (its packets sealed with that SPI may
// still be queued on the way, and after the rotation they would fail authentication). The wait is bounded
// by rekey_window: a peer that never answers cannot stop rotations. Then the rotation proceeds, sessions
// whose every SPI died are counted as lost and closed (egress removed too), and traffic re-establishes them
// on demand through the slow path. Requests that arrive while one is deferred are queued (a few at most).
//
// Table sizes. A session holds at most kMaxIngressPerSession (4) ingress SPIs: the peer's current one, a
// fresh one per exchange in either direction during a re-key window, and retiring ones; more are trimmed
// (retiring first, then oldest) so a peer cannot grow them. The data plane sizes INGR_ACL for that many
// per tunnel (every tunnel can hold its two SPIs of a rotation window, crossing exchanges included).
//
// Idle aging (--tunnel-idle-timeout). expire_idle() gets per-pair packet counters the data plane keeps
// anyway (flow entry hits, summed by the control thread); a session whose counter has not moved for the
// timeout is closed like close_session(). The peer keeps its half until its own timeout; our next packet
// re-creates both halves on demand.
//
// Peer restart (fresh master keys, empty tables). Our egress SAs toward it and the ingress SPIs it held
// are then dead, and nothing on the wire says so. Every signal marks the peer's connected sessions
// "refresh due" (note_stale_peer, rate limited per peer) and the control thread re-exchanges them
// (refresh_peer): fresh ingress SPIs with reverse params, the old egress kept until the answer replaces
// it (make before break). The signals: a request WITHOUT reverse params for a pair whose egress we hold
// (a restarted static-mode peer asks afresh: our egress is probably stale); authentication failures or
// unknown SPIs from the peer's outer address (the data path reports them, rate limited); the peer's gRPC
// channel coming back after it was lost. A request WITH reverse params for a pair we hold simply
// replaces our egress and issues a fresh ingress SPI, as for a first exchange.
//
// Reconfiguration (SIGHUP, pspctl reload). reconfigure() takes the whole new peer list and applies the
// difference: peers are matched by name and keep their index (GrpcPeerClient and the gRPC server's
// PeerDirectory index the same table); new peers get a fresh index (or the slot of a removed peer of the
// same name); a removed peer keeps its slot as an empty entry (no pairs, removed() true: never connected,
// never matched by outer address) so that no index held by another thread ever points elsewhere. Sessions
// of pairs no longer configured, of pairs that moved to another peer, of peers whose configured PIP
// changed, and of local VIPs the caller names (moved to another host port) are closed like
// close_session(): ingress ACLs and egress removed, and listed in the report (closed) for
// notify_closed, which tells their peers (CloseTunnels, below). A peer that does not close its half
// keeps it until its own idle timeout or reload; what it sends meanwhile fails our INGR_ACL (acl_miss).
// Every other session is left exactly as it was: its entries are not touched, so its packets keep flowing.
//
// Threading: every entry point takes one internal mutex (gRPC handler threads and the control thread
// share the manager). No entry point makes an RPC while holding it: client exchanges are split into
// begin (lock: allocate SPI, open ingress, build request) / the RPC (no lock) / finish (lock: apply),
// so two gateways requesting each other at once cannot deadlock.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/id_table.hpp"
#include "control/data_plane.hpp"
#include "control/error.hpp"
#include "control/log_limiter.hpp"
#include "control/messages.hpp"
#include "control/peer_identity.hpp"
#include "control/peer_transport.hpp"
#include "psp/key_ring.hpp"

namespace pspgw::control {

using Clock = std::chrono::steady_clock;

// Ingress SPIs one session may hold (header comment, "Table sizes"); data planes size INGR_ACL for it.
inline constexpr std::size_t kMaxIngressPerSession = 4;
// CloseTunnels bounds: tunnels per request, and per peer a token bucket of requests.
inline constexpr std::size_t kMaxClosePerRequest = 1024;
inline constexpr double kCloseBurst = 8;
inline constexpr double kClosePerSecond = 2;

// One configured peer, as the control core sees it (the gateway converts its config into these).
struct PeerPolicy {
  std::string name;                // e.g. its remote-grpc-address; for logs
  std::vector<VipPair> pairs;      // the (local, remote) VIP pairs of its sessions, config order
  std::optional<net::IpAddr> pip;  // its data-plane address; unset: pinned at the first exchange
  // Its data-plane (outer) address if known before any exchange (e.g. the host of its gRPC address):
  // maps a stale-SPI report to the peer. The outer address of its SAs overrides it once learnt.
  std::optional<net::IpAddr> outer_hint;
};

// What we tell peers about ourselves in TunnelParameters.
struct LocalIdentity {
  net::MacAddr mac;
  net::IpAddr outer_ip;                          // config.local-pip: where peers send PSP packets
  uint64_t virt_cookie = 0x778899aabbccddeeULL;  // DOCA's constant
};

// Retries of failed exchanges (per pair, and static mode's rounds): start fast so a peer that comes up a
// moment later is connected at once, and stay within a few seconds.
struct Backoff {
  Clock::duration initial = std::chrono::milliseconds(100);
  Clock::duration max = std::chrono::seconds(2);
  Clock::duration next(Clock::duration current) const;  // doubles, capped; zero -> initial
};

struct TunnelManagerOptions {
  LocalIdentity local;
  psp::PspVersion version = psp::PspVersion::kAesGcm256;             // --psp-version
  std::size_t max_tunnels = 256;                                     // -x: sessions at once
  std::size_t max_tunnels_per_request = 4096;                        // bound on one MultiTunnelRequest
  Clock::duration peer_rotation_interval = std::chrono::minutes(1);  // per peer; zero: unlimited
  // Client side: tunnels per request we send (static mode, refreshes). A larger set is split into
  // requests of at most this many: the peer's own bound (ours is 4096; DOCA's is unknown), and gRPC's
  // 4 MB message limit (4096 tunnels with reverse params are ~400 KB).
  std::size_t client_request_chunk = 4096;
  // Stale-peer signals re-exchange a peer's sessions at most this often; repeated signals right after a
  // refresh double the spacing up to stale_refresh_max (a spoofed flood cannot keep us re-keying).
  Clock::duration stale_refresh_interval = std::chrono::seconds(1);
  Clock::duration stale_refresh_max = std::chrono::seconds(60);
  bool debug_keys = false;  // -k: the only way a key is logged
  Backoff backoff;
  std::function<Clock::time_point()> now;     // default: steady_clock::now
  std::function<void(std::string_view)> log;  // default: stderr
  std::function<void()> on_rekey_due;         // called (no lock held) when re-keys should run now
  std::function<void()> on_refresh_due;       // called (no lock held) when refresh_peer should run now
  // --key-rotation-interval: maintain_rotation() rotates this long after the last rotation; zero: only on
  // request.
  Clock::duration rotation_interval{};
  // The longest a rotation waits for the re-keys of the previous one (see the header comment).
  Clock::duration rekey_window = std::chrono::seconds(30);
  // A failed re-key is retried with the usual backoff, capped here: several tries fit in rekey_window.
  Clock::duration rekey_retry_max = std::chrono::seconds(2);
  // How long a superseded ingress SPI stays open after the peer confirmed a newer one.
  Clock::duration retire_delay = std::chrono::seconds(1);
};

enum class PairState : uint8_t {
  kIdle,       // nothing installed, may start an exchange
  kInFlight,   // our exchange is outstanding
  kConnected,  // egress installed
  kBackoff,    // last exchange failed; no new one before retry_at
};
std::string_view to_string(PairState s);

// A read-only view of a session, for the tunnel table and tests. No key material.
struct SessionInfo {
  VipPair pair;
  PeerIndex peer = 0;
  PairState state = PairState::kIdle;
  std::vector<uint32_t> ingress_spis;  // newest first
  std::optional<uint32_t> egress_spi;
  std::optional<net::IpAddr> egress_outer_ip;
  bool rekey_due = false;
  Clock::time_point retry_at{};
};

// A client exchange between begin and finish. Move-only; finishing twice is impossible.
struct PendingExchange {
  PeerIndex peer = 0;
  MultiTunnelRequest request;
  std::vector<VipPair> pairs;  // same order as request.tunnels
  uint64_t token = 0;
  bool on_demand = true;  // on-demand/re-key (ingress opened, reverse params) or static
  bool rekey = false;     // a re-key of a connected session: failures are summarised, not logged per pair
};

struct RotationReport {
  uint64_t generation = 0;
  std::size_t closed_ingress = 0;  // ACL entries of the slot that just died
  std::size_t rekey_due = 0;       // sessions to re-key before the next rotation
  std::size_t lost = 0;            // sessions still due from the last rotation: their peer's SPI died
  std::size_t closed = 0;          // of those, sessions left without a live SPI: closed (re-made on demand)
};

// What a rotation request did: rotated at once, or deferred until the re-keys of the previous rotation
// are done (at most rekey_window); maintain_rotation() performs deferred ones.
struct RotationOutcome {
  bool deferred = false;
  RotationReport report;           // deferred: only generation (the current one) is set
  std::size_t rekeys_pending = 0;  // sessions still to re-key from the previous rotation
};

// Per-pair activity for idle aging: any counter that moves when packets flow either way.
using ActivityMap = std::unordered_map<VipPair, uint64_t, VipPairHash>;

// What reconfigure() did.
struct ReconfigureReport {
  std::vector<PeerIndex> index;     // index[i]: the PeerIndex of the new list's peer i
  std::vector<PeerIndex> added;     // peers new to the table (their slot may be a removed one's)
  std::vector<PeerIndex> removed;   // peers no longer configured
  std::size_t pairs_added = 0;      // VIP pairs newly allowed
  std::size_t pairs_removed = 0;    // VIP pairs no longer allowed (or moved to another peer)
  std::size_t sessions_closed = 0;  // sessions torn down (header comment, "Reconfiguration")
  std::vector<std::pair<PeerIndex, VipPair>> closed;  // ... with the peer each belonged to
  std::size_t peer_count = 0;                         // table size afterwards (removed slots included)
};

struct StaticOptions {
  std::function<void(Clock::duration)> sleep;  // default: this_thread::sleep_for
  std::function<bool()> should_stop;           // default: never
  std::size_t max_rounds = 0;                  // 0: until every peer is connected
};

struct StaticReport {
  std::vector<PeerIndex> attempts;  // in the order tried
  std::vector<PeerIndex> failed;    // still not connected when it returned
  std::size_t rounds = 0;
};

class TunnelManager {
 public:
  TunnelManager(psp::KeyRing keys, std::vector<PeerPolicy> peers, DataPlane& data_plane,
                TunnelManagerOptions options);
  ~TunnelManager();
  TunnelManager(const TunnelManager&) = delete;
  TunnelManager& operator=(const TunnelManager&) = delete;

  // ---- server side (a peer's RPC; `caller` as the transport authenticated it) ----
  // kPermissionDenied: a pair not of the caller's peers, or reverse_params off the peer's bound PIP.
  CResult<MultiTunnelResponse> handle_tunnel_request(const Caller& caller, const MultiTunnelRequest& request);
  // kResourceExhausted: a rotation is in flight, or the caller's peer rotated within the interval.
  CResult<KeyRotationResponse> handle_key_rotation(const Caller& caller, const KeyRotationRequest& request);
  // CloseTunnels: the caller closed these tunnels; ours for them close too (as close_session). Pairs we
  // hold no session for are skipped. kPermissionDenied: a pair of another peer (nothing closed);
  // kInvalidArgument: more than kMaxClosePerRequest; kResourceExhausted: over the caller's peer's
  // budget (kCloseBurst requests, then kClosePerSecond).
  CResult<CloseTunnelsResponse> handle_close_request(const Caller& caller,
                                                     const CloseTunnelsRequest& request);

  // Client side of CloseTunnels: the pairs `closed` (with the peer that held them, as
  // ReconfigureReport::closed), one request per peer (chunks of kMaxClosePerRequest), sent through
  // `transport` in parallel. Returns one line per peer that did not close its half (unreachable, or a
  // DOCA peer: kUnimplemented), for the log.
  std::vector<std::string> notify_closed(const std::vector<std::pair<PeerIndex, VipPair>>& closed,
                                         PeerTransport& transport);

  // ---- client side (control thread) ----
  // On-demand (slow path): the peer owning `pair` gets one tunnel with reverse params; our ingress ACL
  // is open when this returns. kNotFound: pair not in config; kAlreadyExists: in flight or connected;
  // kFailedPrecondition: in backoff.
  CResult<PendingExchange> begin_exchange(const VipPair& pair);
  // The same for several pairs of one peer in one request (the slow path's first packets toward many
  // VIPs): each pair checked as above; those that cannot start are left out and listed in `refused` with
  // the reason (also: a pair of another peer than the first one started, and pairs beyond
  // client_request_chunk). Err (the first reason) when none could start.
  CResult<PendingExchange> begin_exchange(std::span<const VipPair> pairs,
                                          std::vector<std::pair<VipPair, Error>>& refused);
  std::size_t client_request_chunk() const { return options_.client_request_chunk; }
  // Applies the peer's answer (installs egress) or the failure (closes the ingress, backs the pair off).
  // Returns the typed failure in both failure cases.
  CStatus finish_exchange(PendingExchange exchange, CResult<MultiTunnelResponse> answer);
  // begin + transport + finish; a pair already connected (by this side or, opening at the same time, by
  // the peer's exchange) is success.
  CStatus connect(const VipPair& pair, PeerTransport& transport);
  // Static mode (-z): the peer's pairs not connected nor in flight, no reverse params, at most
  // client_request_chunk of them. cursor (optional): the index in the peer's pairs to start from, advanced
  // past the pairs taken, so a caller sending chunk after chunk does not rescan.
  CResult<PendingExchange> begin_static(PeerIndex peer, std::size_t* cursor = nullptr);
  CStatus connect_peer_static(PeerIndex peer, PeerTransport& transport);
  // Re-exchanges the peer's sessions marked "refresh due" (header comment), in requests of at most
  // client_request_chunk tunnels; OK when none is due.
  CStatus refresh_peer(PeerIndex peer, PeerTransport& transport);
  // Tries every peer once, skips failures, retries the failed ones after the others with backoff
  // between rounds, until all are connected (spec §5).
  StaticReport connect_all_static(PeerTransport& transport, const StaticOptions& options);

  // ---- stale peers (header comment) ----
  // A signal that `peer` may have restarted: marks its connected sessions refresh due (true if any;
  // false when rate limited). A peer we hold no connected session with is marked for a static connect
  // (static_due) instead, so that it learns our SPIs and refreshes its side.
  bool note_stale_peer(PeerIndex peer, std::string_view why);
  // Peers with sessions marked refresh due, and peers due a static connect (cleared by this call).
  std::vector<PeerIndex> refresh_due_peers() const;
  std::vector<PeerIndex> take_static_due();
  // The peer whose data-plane address is `outer` (learnt from its SAs, else PeerPolicy::pip).
  std::optional<PeerIndex> peer_by_outer(const net::IpAddr& outer) const;

  // ---- keys ----
  // Rotates now, whatever is pending (tests; request_rotation and maintain_rotation pace it).
  RotationReport rotate_master_key();
  // A rotation on request (pspctl, a peer's RequestKeyRotation): now, or deferred (header comment).
  RotationOutcome request_rotation();
  // Control thread, every tick: the rotation_interval timer, deferred rotations, retiring superseded SPIs
  // and a summary log line when the re-keys of a rotation are done. Returns the rotation it made.
  std::optional<RotationReport> maintain_rotation();
  std::size_t rekeys_pending() const;
  // Due pairs that may start a re-key now (not in flight, not backing off), sorted; at most `limit`,
  // taken round-robin from a queue of due pairs, so polling it costs little even with 100k tunnels.
  std::vector<VipPair> rekey_due(std::size_t limit = SIZE_MAX) const;
  // Re-keys one due pair (see the header comment); kNotFound if it is not due.
  CStatus rekey(const VipPair& pair, PeerTransport& transport);
  // Asks a peer to rotate its master key.
  CStatus request_peer_rotation(PeerIndex peer, bool issue_new_keys, PeerTransport& transport);

  // ---- reconfiguration (header comment) ----
  // `peers`: the whole new list, config order, names unique. `moved_vips`: local VIPs whose sessions
  // must close even though their pairs stay allowed (they moved to another host port).
  ReconfigureReport reconfigure(std::vector<PeerPolicy> peers, const std::vector<net::IpAddr>& moved_vips);

  // ---- sessions ----
  CStatus close_session(const VipPair& pair);
  // Closes every session whose activity counter has not changed for `timeout` (not one in flight); a
  // session missing from `activity` counts as unchanged. Returns how many it closed; logs one line.
  std::size_t expire_idle(const ActivityMap& activity, Clock::duration timeout);
  std::optional<SessionInfo> session(const VipPair& pair) const;
  std::vector<SessionInfo> sessions() const;
  PairState state(const VipPair& pair) const;
  std::optional<PeerIndex> peer_of(const VipPair& pair) const;
  // Slots in the peer table, removed peers included (reconfigure keeps their index).
  std::size_t peer_count() const;
  // A copy: reconfigure may change the table meanwhile.
  PeerPolicy peer(PeerIndex i) const;
  std::string peer_name(PeerIndex i) const;
  bool removed(PeerIndex i) const;
  // The PIP peer i is bound to (configured, or pinned at its first exchange); nullopt before that.
  std::optional<net::IpAddr> bound_pip(PeerIndex i) const;

 private:
  struct Session;
  struct Undo;
  using PairTable = IdTable<VipPair, VipPairHash>;
  using PairId = PairTable::Id;
  // A configured peer as the table keeps it: PeerPolicy with its pairs as ids of pairs_, config order.
  struct Peer {
    std::string name;
    std::vector<PairId> pairs;
    std::optional<net::IpAddr> pip;
    std::optional<net::IpAddr> outer_hint;
  };
  // Per allowed pair (index: its id in pairs_): the peer it belongs to and its session, if any.
  static constexpr uint32_t kNoSession = UINT32_MAX;
  struct PairSlot {
    uint32_t owner = 0;             // PeerIndex
    uint32_t session = kNoSession;  // in session_blocks_
  };
  // Sessions by value in blocks of this many: no heap chunk per session, and a Session& stays valid while
  // others are made.
  static constexpr uint32_t kSessionBlock = 1024;

  CResult<psp::PspVersion> negotiate(const std::vector<uint32_t>& accepted) const;
  CStatus check_request_locked(const MultiTunnelRequest& request) const;
  CStatus authorise_locked(const Caller& caller, const MultiTunnelRequest& request);
  CStatus check_pip_locked(PeerIndex peer, const net::IpAddr& outer_ip) const;
  void pin_pip_locked(PeerIndex peer, const net::IpAddr& outer_ip);
  CStatus admit_rotation_locked(const Caller& caller);
  CStatus admit_close_locked(const Caller& caller);
  std::string describe_caller(const Caller& caller) const;
  void log_refusal_locked(const std::string& line);
  CResult<TunnelParams> serve_tunnel_locked(const TunnelRequest& t, psp::PspVersion v, Undo& undo);
  CResult<TunnelParams> issue_params_locked(const VipPair& pair, psp::PspVersion v, Session& s);
  CStatus install_egress_locked(const VipPair& pair, Session& s, const TunnelParams& params);
  void close_ingress_locked(const VipPair& pair, Session& s, uint32_t spi);
  void forget_if_empty_locked(const VipPair& pair);
  CStatus fail_exchange_locked(const PendingExchange& x, const Error& error);
  CResult<PendingExchange> begin_locked(const VipPair& pair, bool rekey);
  CResult<PendingExchange> begin_refresh(PeerIndex peer);
  CStatus run_exchange(CResult<PendingExchange> x, PeerTransport& transport);
  Session* find_locked(const VipPair& pair);
  Session* session_at(PairId id) const;  // nullptr: no session
  Session& session_locked(PairId id, PeerIndex peer);
  void erase_session_locked(const VipPair& pair);
  std::optional<PeerIndex> owner_locked(const VipPair& pair) const;
  PairId intern_locked(const VipPair& pair, PeerIndex owner);
  // f(pair, session) for every session, in pair-id order; f may change a session but not add or remove one.
  template <class F>
  void for_each_session_locked(F&& f) const;
  RotationReport rotate_locked();
  bool rotation_blocked_locked(std::size_t& pending) const;
  std::size_t rekeys_pending_locked() const;
  void confirm_locked(const VipPair& pair, Session& s, uint32_t spi);
  void trim_ingress_locked(const VipPair& pair, Session& s);
  void retire_due_locked();
  void report_rekeys_locked();
  void close_locked(const VipPair& pair, Session& s);
  PeerIndex slot_for_locked(const std::string& name, ReconfigureReport& report);
  std::size_t close_pairs_locked(const std::vector<VipPair>& pairs);
  bool over_tunnel_limit_locked(std::size_t fresh) const;
  void count_active_locked(Session& s);
  SessionInfo info_locked(const VipPair& pair, const Session& s) const;
  void log(const std::string& line) const;
  void log_key(std::string_view what, const VipPair& pair, uint32_t spi, const psp::DerivedKey& key) const;
  Clock::time_point now() const { return options_.now(); }

  mutable std::mutex mu_;
  psp::KeyRing keys_;
  std::vector<Peer> peers_;
  // The allow list and the sessions in one flat table: every configured pair (and no other: a session
  // exists only for an allowed pair) interned to an id, its owner and session in slots_[id].
  PairTable pairs_;
  std::vector<PairSlot> slots_;
  std::vector<std::unique_ptr<Session[]>> session_blocks_;
  std::vector<uint32_t> free_sessions_;           // slots of closed sessions, reused first
  uint32_t sessions_made_ = 0;                    // slots ever used
  std::size_t active_ = 0;                        // sessions whose active() is true (count_active_locked)
  std::vector<std::optional<net::IpAddr>> pips_;  // per peer: bound PIP
  std::vector<std::optional<Clock::time_point>> last_peer_rotation_;  // per peer
  struct CloseBudget {
    double tokens = kCloseBurst;
    Clock::time_point at{};
  };
  std::vector<CloseBudget> close_budget_;  // per peer: CloseTunnels requests it may still make
  std::vector<std::pair<PeerIndex, VipPair>> last_closed_;  // close_pairs_locked's, for reconfigure
  std::mutex rotation_mu_;  // held by the one peer-triggered rotation in flight
  LogLimiter refusal_log_;
  // Per peer (index as peers_): stale-signal state.
  struct PeerState {
    std::optional<net::IpAddr> outer;  // from its SAs, else PeerPolicy::pip
    bool refresh_pending = false;      // some session is refresh due
    bool static_due = false;           // note_stale_peer found nothing to refresh: connect statically
    Clock::time_point next_stale{};    // rate limit of note_stale_peer
    Clock::duration stale_spacing{};
    bool removed = false;  // no longer configured (reconfigure): an empty slot
  };
  std::vector<PeerState> peer_state_;
  DataPlane& data_plane_;
  TunnelManagerOptions options_;
  uint64_t next_request_id_;
  uint64_t next_token_ = 1;

  // Rotation pacing (header comment).
  Clock::time_point last_rotation_;
  std::size_t queued_rotations_ = 0;
  Clock::time_point deferred_since_{};
  mutable std::deque<VipPair> due_queue_;  // pairs made due (by a rotation or a late confirm), each kept
                                           // until its session is no longer due
  struct RekeyRound {
    bool open = false;
    uint64_t generation = 0;
    Clock::time_point started{};
    std::size_t due = 0;
    std::size_t failures = 0;
    Clock::time_point next_report{};
  } round_;
  struct Retiring {
    Clock::time_point at;
    VipPair pair;
    uint32_t spi;
  };
  std::deque<Retiring> retiring_;  // in time order (retire_delay is constant)
};

}  // namespace pspgw::control
