#include "control/grpc_peer_client.hpp"

#include <pthread.h>

#include <climits>
#include <cstdint>

#include "control/grpc_convert.hpp"
#include "control/grpc_status.hpp"

namespace pspgw::control {

GrpcPeerClient::GrpcPeerClient(std::vector<std::string> addresses, GrpcClientOptions options)
    : addresses_(std::move(addresses)), options_(std::move(options)) {
  if (!options_.credentials) options_.credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_backoff.count()));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.reconnect_backoff.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.max_reconnect_backoff.count()));
  args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, INT_MAX);  // kept up: the next exchange must not reconnect
  if (options_.keepalive.count() > 0) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options_.keepalive.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options_.keepalive_timeout.count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  stubs_.reserve(addresses_.size());
  for (const std::string& address : addresses_) {  // connect lazily, on the first call, or connect_ahead()
    channels_.push_back(grpc::CreateCustomChannel(address, options_.credentials, args));
    stubs_.push_back(psp_gateway::PSP_Gateway::NewStub(channels_.back()));
  }
}

GrpcPeerClient::~GrpcPeerClient() {
  stop_watching();
}

void GrpcPeerClient::connect_ahead() {
  std::lock_guard lock(watch_mu_);
  if (watcher_.joinable() || watch_stop_) return;
  for (const auto& channel : channels_) (void)channel->GetState(true);
  watcher_ = std::thread([this] { watch(); });
}

void GrpcPeerClient::stop_watching() {
  {
    std::lock_guard lock(watch_mu_);
    watch_stop_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
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

void GrpcPeerClient::warm_up(PeerIndex peer, grpc::CompletionQueue& cq, std::unique_ptr<WarmUp>& slot) const {
  slot = std::make_unique<WarmUp>();
  slot->context.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  slot->call = stubs_[peer]->AsyncRequestMultipleTunnelParams(&slot->context, {}, &cq);
  slot->call->Finish(&slot->reply, &slot->status, watch_tag(peer, WatchEvent::kWarmedUp));
}

// Follows every state change of every channel (NotifyOnStateChange, so a drop and reconnect between
// two looks is not missed), and asks each channel that is not READY to connect (GetState(true): a
// channel the peer closed goes IDLE and would otherwise wait for the next call). Each notification has
// a deadline of watch_period, so stop takes at most that long. A channel that becomes READY is warmed up
// (WarmUp) and reported.
void GrpcPeerClient::watch() {
  pthread_setname_np(pthread_self(), "pspgw-channels");
  const std::size_t n = channels_.size();
  std::vector<grpc_connectivity_state> last(n);
  std::vector<bool> was_ready(n, false);
  std::vector<bool> lost(n, false);
  std::vector<std::unique_ptr<WarmUp>> warming(n);  // the warm-up call in flight per peer
  grpc::CompletionQueue cq;
  std::size_t pending = 0;  // tags the queue still owes us
  auto arm = [&](PeerIndex p) {
    channels_[p]->NotifyOnStateChange(last[p], std::chrono::system_clock::now() + options_.watch_period, &cq,
                                      watch_tag(p, WatchEvent::kStateChange));
    ++pending;
  };
  auto update = [&](PeerIndex p, bool changed) {
    if (changed && last[p] == GRPC_CHANNEL_READY) lost[p] = true;  // even if READY again already
    last[p] = channels_[p]->GetState(true);
    if (last[p] != GRPC_CHANNEL_READY) {
      lost[p] = lost[p] || was_ready[p];
      return;
    }
    if (!was_ready[p] || lost[p]) {
      if (!warming[p]) {
        warm_up(p, cq, warming[p]);
        ++pending;
      }
      if (options_.on_ready) options_.on_ready(p, lost[p]);
    }
    was_ready[p] = true;
    lost[p] = false;
  };
  for (PeerIndex p = 0; p < n; ++p) {
    update(p, false);
    arm(p);
  }
  auto stopping = [this] {
    std::lock_guard lock(watch_mu_);
    return watch_stop_;
  };
  void* tag = nullptr;
  bool changed = false;
  while (pending > 0 && cq.Next(&tag, &changed)) {
    --pending;
    const auto p = static_cast<PeerIndex>(reinterpret_cast<uintptr_t>(tag) >> 1);
    const bool stop = stopping();
    if (static_cast<WatchEvent>(reinterpret_cast<uintptr_t>(tag) & 1) == WatchEvent::kWarmedUp) {
      warming[p].reset();  // whatever the answer: the call's work is done
      continue;
    }
    if (stop) {
      for (auto& w : warming)
        if (w) w->context.TryCancel();  // answered at once, CANCELLED
      continue;
    }
    update(p, changed);
    arm(p);
  }
  cq.Shutdown();
  while (cq.Next(&tag, &changed)) {
  }
}

// A channel that failed to connect (its peer was down, e.g. when we started first) sits in
// TRANSIENT_FAILURE until its reconnect backoff expires, and a call then fails at once. The peer may be
// back: reconnect now and give it a moment (a live peer connects in well under a millisecond on a LAN),
// so that our own retry schedule, not gRPC's, decides when a peer is tried.
void GrpcPeerClient::revive(PeerIndex peer) const {
  grpc::Channel& channel = *channels_[peer];
  if (channel.GetState(true) != GRPC_CHANNEL_TRANSIENT_FAILURE) return;
  grpc::experimental::ChannelResetConnectionBackoff(&channel);
  (void)channel.WaitForStateChange(GRPC_CHANNEL_TRANSIENT_FAILURE,
                                   std::chrono::system_clock::now() + options_.revive_wait);
}

void GrpcPeerClient::arm(grpc::ClientContext& context) const {
  context.set_deadline(std::chrono::system_clock::now() + options_.deadline);
  context.set_wait_for_ready(false);  // an unreachable peer fails now (UNAVAILABLE), not at the deadline
}

CResult<MultiTunnelResponse> GrpcPeerClient::request_tunnels(PeerIndex peer,
                                                             const MultiTunnelRequest& request) {
  if (peer >= stubs_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  psp_gateway::MultiTunnelRequest wire;
  grpc_convert::to_proto(request, &wire);
  psp_gateway::MultiTunnelResponse reply;
  grpc::ClientContext context;
  revive(peer);
  arm(context);
  const grpc::Status status = stubs_[peer]->RequestMultipleTunnelParams(&context, wire, &reply);
  grpc_convert::wipe_keys(&wire);
  if (!status.ok()) return Err{from_grpc_status(status, addresses_[peer])};
  auto parsed = grpc_convert::from_proto(reply);
  grpc_convert::wipe_keys(&reply);
  if (!parsed) {  // the peer sent garbage: a protocol violation, not a bad request of ours
    return fail(ControlError::kInternal, addresses_[peer] + ": bad response: " + parsed.error().message);
  }
  return parsed;
}

CResult<KeyRotationResponse> GrpcPeerClient::request_key_rotation(PeerIndex peer,
                                                                  const KeyRotationRequest& request) {
  if (peer >= stubs_.size()) return fail(ControlError::kNotFound, "no peer #" + std::to_string(peer));
  psp_gateway::KeyRotationRequest wire;
  wire.set_request_id(request.request_id);
  wire.set_issue_new_keys(request.issue_new_keys);
  psp_gateway::KeyRotationResponse reply;
  grpc::ClientContext context;
  revive(peer);
  arm(context);
  const grpc::Status status = stubs_[peer]->RequestKeyRotation(&context, wire, &reply);
  if (!status.ok()) return Err{from_grpc_status(status, addresses_[peer])};
  return KeyRotationResponse{reply.request_id()};
}

}  // namespace pspgw::control
