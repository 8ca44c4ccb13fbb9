#include "control/grpc_peer_client.hpp"

#include <pthread.h>

#include <algorithm>
#include <climits>
#include <cstdint>

#include "control/grpc_convert.hpp"
#include "control/grpc_status.hpp"

namespace pspgw::control {

GrpcPeerClient::GrpcPeerClient(const std::vector<std::string>& addresses, GrpcClientOptions options)
    : options_(std::move(options)) {
  if (!options_.credentials) options_.credentials = grpc::InsecureChannelCredentials();
  args_.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_backoff.count()));
  // gRPC takes this as the least time a connection attempt (TCP, TLS, HTTP/2 SETTINGS) gets: a call's
  // deadline, not the retry backoff, or a slow handshake (a busy host, a distant peer) never completes.
  args_.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.deadline.count()));
  args_.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.max_reconnect_backoff.count()));
  args_.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);  // kept up: the next exchange must not reconnect
  if (options_.keepalive.count() > 0) {
    args_.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options_.keepalive.count()));
    args_.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options_.keepalive_timeout.count()));
    args_.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args_.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  links_.reserve(addresses.size());
  for (const std::string& address : addresses) links_.push_back(make_link(address));  // connect lazily
}

GrpcPeerClient::~GrpcPeerClient() {
  stop_watching();
}

std::shared_ptr<const GrpcPeerClient::Link> GrpcPeerClient::make_link(const std::string& address) const {
  auto l = std::make_shared<Link>();
  l->address = address;
  l->channel = grpc::CreateCustomChannel(address, options_.credentials, args_);
  l->stub = psp_gateway::PSP_Gateway::NewStub(l->channel);
  return l;
}

GrpcPeerClient::Links GrpcPeerClient::links() const {
  std::lock_guard lock(links_mu_);
  return links_;
}

CResult<std::shared_ptr<const GrpcPeerClient::Link>> GrpcPeerClient::link(PeerIndex peer) const {
  std::lock_guard lock(links_mu_);
  if (peer >= links_.size() || !links_[peer]) {
    return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  }
  return links_[peer];
}

void GrpcPeerClient::set_peers(const std::vector<std::optional<std::string>>& addresses) {
  const Links old = links();
  Links next(addresses.size());
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    if (!addresses[i]) continue;
    const bool same = i < old.size() && old[i] && old[i]->address == *addresses[i];
    next[i] = same ? old[i] : make_link(*addresses[i]);
    if (!same) (void)next[i]->channel->GetState(true);  // connect ahead, as at start
  }
  std::lock_guard lock(links_mu_);
  links_ = std::move(next);
  ++generation_;
}

void GrpcPeerClient::set_credentials(std::shared_ptr<grpc::ChannelCredentials> credentials) {
  Links next = links();
  {
    std::lock_guard lock(links_mu_);
    options_.credentials = std::move(credentials);
  }
  for (auto& l : next) {
    if (!l) continue;
    l = make_link(l->address);
    (void)l->channel->GetState(true);
  }
  std::lock_guard lock(links_mu_);
  links_ = std::move(next);
  ++generation_;
}

void GrpcPeerClient::connect_ahead() {
  std::lock_guard lock(watch_mu_);
  if (watcher_.joinable() || watch_stop_) return;
  for (const auto& l : links()) {
    if (l) (void)l->channel->GetState(true);
  }
  watcher_ = std::thread([this] { watch(); });
}

void GrpcPeerClient::stop_watching() {
  {
    std::lock_guard lock(watch_mu_);
    watch_stop_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

void GrpcPeerClient::watch() {
  pthread_setname_np(pthread_self(), "pspgw-channels");
  for (;;) {
    Links ls;
    uint64_t generation = 0;
    {
      std::lock_guard lock(links_mu_);
      ls = links_;
      generation = generation_;
    }
    if (!watch_round(ls, generation)) return;
  }
}

namespace {

// The watcher's completion-queue tags: a peer's index and what completed for it.
enum class WatchEvent : uintptr_t { kStateChange = 0, kWarmedUp = 1 };

void* watch_tag(PeerIndex peer, WatchEvent e) {
  return reinterpret_cast<void*>((uintptr_t{peer} << 1) | static_cast<uintptr_t>(e));
}

}  // namespace

// A call that is answered without effect: a MultiTunnelRequest with no tunnels (our server refuses it as
// INVALID_ARGUMENT before touching any state; DOCA's answers it with no tunnels). Made on a channel as soon
// as it is READY, it runs both ends' per-connection and first-call set-up (HTTP/2 streams and header
// tables, TLS records, the server's handler thread, our identification of the caller) before a packet
// waits on it: the first exchange then costs what every later one does.
struct GrpcPeerClient::WarmUp {
  grpc::ClientContext context;
  psp_gateway::MultiTunnelResponse reply;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<psp_gateway::MultiTunnelResponse>> call;
};

void GrpcPeerClient::warm_up(const Link& link, PeerIndex peer, grpc::CompletionQueue& cq,
                             std::unique_ptr<WarmUp>& slot) const {
  slot = std::make_unique<WarmUp>();
  slot->context.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  slot->call = link.stub->AsyncRequestMultipleTunnelParams(&slot->context, {}, &cq);
  slot->call->Finish(&slot->reply, &slot->status, watch_tag(peer, WatchEvent::kWarmedUp));
}

// One round over a fixed table (until stop, or until set_peers / set_credentials changed it): follows
// every state change of every channel (NotifyOnStateChange, so a drop and reconnect between two looks is
// not missed), and asks each channel that is not READY to connect (GetState(true): a channel the peer
// closed goes IDLE and would otherwise wait for the next call). Each notification has a deadline of
// watch_period, so stop and a table change take at most that long. A channel that becomes READY is
// warmed up (WarmUp) and reported. Returns false when stopping.
bool GrpcPeerClient::watch_round(const Links& ls, uint64_t generation) {
  const std::size_t n = ls.size();
  std::erase_if(watched_, [](const auto& w) { return w.first.expired(); });
  std::vector<Watched*> state(n, nullptr);
  watched_.reserve(watched_.size() + n);  // no reallocation below: state[] points into watched_
  for (PeerIndex p = 0; p < n; ++p) {
    if (!ls[p]) continue;
    auto it = std::find_if(watched_.begin(), watched_.end(),
                           [&](const auto& w) { return w.first.lock() == ls[p]; });
    if (it == watched_.end()) it = watched_.insert(watched_.end(), {ls[p], Watched{}});
    state[p] = &it->second;
  }
  std::vector<grpc_connectivity_state> last(n);
  std::vector<std::unique_ptr<WarmUp>> warming(n);  // the warm-up call in flight per peer
  grpc::CompletionQueue cq;
  std::size_t pending = 0;  // tags the queue still owes us
  auto arm_notify = [&](PeerIndex p) {
    ls[p]->channel->NotifyOnStateChange(last[p], std::chrono::system_clock::now() + options_.watch_period,
                                        &cq, watch_tag(p, WatchEvent::kStateChange));
  };
  auto update = [&](PeerIndex p, bool changed) {
    Watched& w = *state[p];
    if (changed && last[p] == GRPC_CHANNEL_READY) w.lost = true;  // even if READY again already
    last[p] = ls[p]->channel->GetState(true);
    if (last[p] != GRPC_CHANNEL_READY) {
      w.lost = w.lost || w.was_ready;
      return;
    }
    if (!w.was_ready || w.lost) {
      if (!warming[p]) {
        warm_up(*ls[p], p, cq, warming[p]);
        ++pending;
      }
      if (options_.on_ready) options_.on_ready(p, w.lost);
    }
    w.was_ready = true;
    w.lost = false;
  };
  for (PeerIndex p = 0; p < n; ++p) {
    if (!ls[p]) continue;
    update(p, false);
    arm_notify(p);
    ++pending;
  }
  auto go_on = [&] {
    {
      std::lock_guard lock(watch_mu_);
      if (watch_stop_) return false;
    }
    std::lock_guard lock(links_mu_);
    return generation_ == generation;
  };
  void* tag = nullptr;
  bool changed = false;
  bool stopping = false;
  if (pending == 0) {  // nothing to watch: wait for a table change or stop
    std::this_thread::sleep_for(options_.watch_period);
  }
  while (pending > 0 && cq.Next(&tag, &changed)) {
    --pending;
    const auto p = static_cast<PeerIndex>(reinterpret_cast<uintptr_t>(tag) >> 1);
    if (static_cast<WatchEvent>(reinterpret_cast<uintptr_t>(tag) & 1) == WatchEvent::kWarmedUp) {
      warming[p].reset();  // whatever the answer: the call's work is done
      continue;
    }
    update(p, changed);
    if (go_on()) {
      arm_notify(p);
      ++pending;
    } else {
      for (auto& w : warming)
        if (w) w->context.TryCancel();  // answered at once, CANCELLED: the round ends without waiting
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &changed)) {
  }
  {
    std::lock_guard lock(watch_mu_);
    stopping = watch_stop_;
  }
  return !stopping;
}

// A channel that failed to connect (its peer was down, e.g. when we started first) sits in
// TRANSIENT_FAILURE until its reconnect backoff expires, and a call then fails at once. The peer may be
// back: reconnect now and give it a moment (a live peer connects in well under a millisecond on a LAN),
// so that our own retry schedule, not gRPC's, decides when a peer is tried.
void GrpcPeerClient::revive(grpc::Channel& channel) const {
  if (channel.GetState(true) != GRPC_CHANNEL_TRANSIENT_FAILURE) return;
  grpc::experimental::ChannelResetConnectionBackoff(&channel);
  (void)channel.WaitForStateChange(GRPC_CHANNEL_TRANSIENT_FAILURE,
                                   std::chrono::system_clock::now() + options_.revive_wait);
}

void GrpcPeerClient::arm(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  context.set_wait_for_ready(false);  // an unreachable peer fails now (UNAVAILABLE), not at the deadline
}

void GrpcPeerClient::outcome(PeerIndex peer, const grpc::Status& status, const std::string& what) const {
  if (options_.counters)
    options_.counters->count(peer, RpcDirection::kSent, status.error_code(), status.error_message());
  if (options_.debug) {
    options_.debug("gRPC: sent " + what + ": " + std::string(rpc_code_name(status.error_code())) +
                   (status.ok() ? "" : " (" + status.error_message() + ")"));
  }
}

CResult<MultiTunnelResponse> GrpcPeerClient::request_tunnels(PeerIndex peer,
                                                             const MultiTunnelRequest& request) {
  auto l = link(peer);
  if (!l) return Err{l.error()};
  const Link& to = **l;
  psp_gateway::MultiTunnelRequest wire;
  grpc_convert::to_proto(request, &wire);
  psp_gateway::MultiTunnelResponse reply;
  grpc::ClientContext context;
  revive(*to.channel);
  arm(context);
  const grpc::Status status = to.stub->RequestMultipleTunnelParams(&context, wire, &reply);
  grpc_convert::wipe_keys(&wire);
  outcome(peer, status,
          "RequestMultipleTunnelParams to " + to.address + " (request " + std::to_string(request.request_id) +
              ", " + std::to_string(request.tunnels.size()) + " tunnel(s))");
  if (!status.ok()) return Err{from_grpc_status(status, to.address)};
  auto parsed = grpc_convert::from_proto(reply);
  grpc_convert::wipe_keys(&reply);
  if (!parsed) {  // the peer sent garbage: a protocol violation, not a bad request of ours
    return fail(ControlError::kInternal, to.address + ": bad response: " + parsed.error().message);
  }
  return parsed;
}

CResult<KeyRotationResponse> GrpcPeerClient::request_key_rotation(PeerIndex peer,
                                                                  const KeyRotationRequest& request) {
  auto l = link(peer);
  if (!l) return Err{l.error()};
  const Link& to = **l;
  psp_gateway::KeyRotationRequest wire;
  wire.set_request_id(request.request_id);
  wire.set_issue_new_keys(request.issue_new_keys);
  psp_gateway::KeyRotationResponse reply;
  grpc::ClientContext context;
  revive(*to.channel);
  arm(context);
  const grpc::Status status = to.stub->RequestKeyRotation(&context, wire, &reply);
  outcome(peer, status,
          "RequestKeyRotation to " + to.address + " (request " + std::to_string(request.request_id) + ")");
  if (!status.ok()) return Err{from_grpc_status(status, to.address)};
  return KeyRotationResponse{reply.request_id()};
}

CResult<CloseTunnelsResponse> GrpcPeerClient::close_tunnels(PeerIndex peer,
                                                            const CloseTunnelsRequest& request) {
  constexpr auto kCloseDeadline = std::chrono::seconds(1);
  auto l = link(peer);
  if (!l) return Err{l.error()};
  const Link& to = **l;
  psp_gateway::CloseTunnelsRequest wire;
  wire.set_request_id(request.request_id);
  for (const auto& t : request.tunnels) {
    auto* w = wire.add_tunnels();
    w->set_virt_src_ip(t.requester_vip.to_string());
    w->set_virt_dst_ip(t.responder_vip.to_string());
  }
  psp_gateway::CloseTunnelsResponse reply;
  grpc::ClientContext context;
  revive(*to.channel);
  arm(context);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::min<std::chrono::system_clock::duration>(options_.deadline, kCloseDeadline));
  const grpc::Status status = to.stub->CloseTunnels(&context, wire, &reply);
  outcome(peer, status,
          "CloseTunnels to " + to.address + " (request " + std::to_string(request.request_id) + ", " +
              std::to_string(request.tunnels.size()) + " tunnel(s))");
  if (!status.ok()) return Err{from_grpc_status(status, to.address)};
  return CloseTunnelsResponse{reply.request_id(), reply.closed()};
}

}  // namespace pspgw::control
