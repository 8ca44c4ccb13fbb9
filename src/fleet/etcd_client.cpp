#include "fleet/etcd_client.hpp"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <sstream>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace pspgw::fleet {

namespace {

namespace pb = etcdserverpb;

// etcd answers these when the store (not the call) is the problem: try the next endpoint.
bool endpoint_failed(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

Error to_error(const grpc::Status& s, std::string_view what) {
  std::string message = std::string(what) + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return {FleetError::kUnavailable, std::move(message)};
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return {FleetError::kPermissionDenied, std::move(message)};
    case grpc::StatusCode::OUT_OF_RANGE:
      return {FleetError::kCompacted, std::move(message)};  // rev compacted
    case grpc::StatusCode::NOT_FOUND:
      return {FleetError::kLeaseLost, std::move(message)};  // lease not found
    default:
      return {FleetError::kInternal, std::move(message)};
  }
}

FResult<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(FleetError::kInternal, "etcd TLS: cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

KeyValue from_proto(const mvccpb::KeyValue& kv) {
  return {kv.key(), kv.value(), kv.mod_revision(), kv.lease()};
}

class GrpcWatch;

}  // namespace

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());  // NOLINT: byte arithmetic on a key
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

FResult<std::string> endpoint_target(std::string_view url, bool& tls) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
    tls = false;
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
    tls = true;
  } else {
    return fail(FleetError::kBadRecord,
                "etcd endpoint '" + std::string(url) + "': not http://HOST:PORT or https://");
  }
  while (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos || rest.rfind(':') == std::string_view::npos)
    return fail(FleetError::kBadRecord, "etcd endpoint '" + std::string(url) + "': HOST:PORT expected");
  return std::string(rest);
}

struct EtcdClient::Impl {
  struct Endpoint {
    std::string url;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::KV::Stub> kv;
    std::unique_ptr<pb::Lease::Stub> lease;
    std::unique_ptr<pb::Watch::Stub> watch;
  };
  EtcdOptions options;
  std::vector<Endpoint> endpoints;
  std::atomic<std::size_t> current{0};

  std::unique_ptr<grpc::ClientContext> context() const {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + options.deadline);
    return c;
  }

  // Runs call(endpoint) on the current endpoint, moving on after endpoint failures (each once).
  template <class Call>
  grpc::Status each_endpoint(Call&& call) {
    grpc::Status s;
    for (std::size_t tried = 0; tried < endpoints.size(); ++tried) {
      const std::size_t i = current.load() % endpoints.size();
      s = call(endpoints[i]);
      if (!endpoint_failed(s)) return s;
      std::size_t expected = i;  // another call may have moved on already
      current.compare_exchange_strong(expected, i + 1);
    }
    return s;
  }
};

FResult<std::unique_ptr<EtcdClient>> EtcdClient::create(EtcdOptions options) {
  if (options.endpoints.empty()) return fail(FleetError::kBadRecord, "no etcd endpoint");
  auto impl = std::make_unique<Impl>();
  std::shared_ptr<grpc::ChannelCredentials> tls;
  if (options.tls.any()) {
    grpc::SslCredentialsOptions o;
    for (auto [path, out] :
         {std::pair{&options.tls.ca, &o.pem_root_certs}, std::pair{&options.tls.cert, &o.pem_cert_chain},
          std::pair{&options.tls.key, &o.pem_private_key}}) {
      if (path->empty()) continue;
      auto text = read_file(*path);
      if (!text) return Err{text.error()};
      *out = std::move(*text);
    }
    tls = grpc::SslCredentials(o);
  }
  for (const auto& url : options.endpoints) {
    bool https = false;
    auto target = endpoint_target(url, https);
    if (!target) return Err{target.error()};
    if (https && !tls) tls = grpc::SslCredentials(grpc::SslCredentialsOptions{});
    grpc::ChannelArguments args;
    // A dead member (or a cut link) must break the watch stream in seconds, not at TCP's timeout.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
    args.SetMaxReceiveMessageSize(64 << 20);
    Impl::Endpoint e;
    e.url = url;
    e.channel = grpc::CreateCustomChannel(*target, https ? tls : grpc::InsecureChannelCredentials(), args);
    e.kv = pb::KV::NewStub(e.channel);
    e.lease = pb::Lease::NewStub(e.channel);
    e.watch = pb::Watch::NewStub(e.channel);
    impl->endpoints.push_back(std::move(e));
  }
  impl->options = std::move(options);
  return std::unique_ptr<EtcdClient>(new EtcdClient(std::move(impl)));
}

EtcdClient::EtcdClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdClient::~EtcdClient() = default;

std::string EtcdClient::endpoint() const {
  return impl_->endpoints[impl_->current.load() % impl_->endpoints.size()].url;
}

void EtcdClient::rotate() {
  impl_->current.fetch_add(1);
}

FStatus EtcdClient::put(const std::string& key, const std::string& value, int64_t lease) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  pb::PutResponse resp;
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    return e.kv->Put(ctx.get(), req, &resp);
  });
  if (!s.ok()) return Err{to_error(s, "etcd put " + key)};
  return {};
}

FResult<std::vector<KeyValue>> EtcdClient::get(const std::string& key) {
  pb::RangeRequest req;
  req.set_key(key);
  pb::RangeResponse resp;
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    return e.kv->Range(ctx.get(), req, &resp);
  });
  if (!s.ok()) return Err{to_error(s, "etcd get " + key)};
  std::vector<KeyValue> out;
  for (const auto& kv : resp.kvs()) out.push_back(from_proto(kv));
  return out;
}

FStatus EtcdClient::erase(const std::string& key) {
  pb::DeleteRangeRequest req;
  req.set_key(key);
  pb::DeleteRangeResponse resp;
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    return e.kv->DeleteRange(ctx.get(), req, &resp);
  });
  if (!s.ok()) return Err{to_error(s, "etcd delete " + key)};
  return {};
}

FResult<RangeResult> EtcdClient::get_prefix(const std::string& prefix, int64_t page) {
  RangeResult out;
  std::string from = prefix;
  const std::string end = prefix_end(prefix);
  for (;;) {
    pb::RangeRequest req;
    req.set_key(from);
    req.set_range_end(end);
    req.set_limit(page);
    req.set_revision(out.revision);  // 0 on the first page: now; then the first page's revision
    pb::RangeResponse resp;
    const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
      auto ctx = impl_->context();
      return e.kv->Range(ctx.get(), req, &resp);
    });
    if (!s.ok()) return Err{to_error(s, "etcd range " + prefix)};
    if (out.revision == 0) out.revision = resp.header().revision();
    for (const auto& kv : resp.kvs()) out.kvs.push_back(from_proto(kv));
    if (!resp.more() || resp.kvs().empty()) return out;
    from = resp.kvs().rbegin()->key() + std::string(1, '\0');
  }
}

FResult<int64_t> EtcdClient::grant_lease(int64_t ttl) {
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl);
  pb::LeaseGrantResponse resp;
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    return e.lease->LeaseGrant(ctx.get(), req, &resp);
  });
  if (!s.ok()) return Err{to_error(s, "etcd lease grant")};
  if (!resp.error().empty()) return fail(FleetError::kInternal, "etcd lease grant: " + resp.error());
  return resp.id();
}

FResult<int64_t> EtcdClient::keep_alive(int64_t lease) {
  pb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  pb::LeaseKeepAliveResponse resp;
  // One request, one answer on a short-lived stream: a keep-alive every few seconds needs no stream
  // kept open (and a broken one is noticed at the next call, on the next endpoint).
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    auto stream = e.lease->LeaseKeepAlive(ctx.get());
    if (!stream->Write(req) || !stream->Read(&resp)) {
      stream->WritesDone();
      grpc::Status st = stream->Finish();
      return st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream closed") : st;
    }
    stream->WritesDone();
    ctx->TryCancel();
    (void)stream->Finish();
    return grpc::Status::OK;
  });
  if (!s.ok()) return Err{to_error(s, "etcd lease keep-alive")};
  if (resp.ttl() <= 0)
    return fail(FleetError::kLeaseLost, "etcd lease " + std::to_string(lease) + " expired");
  return resp.ttl();
}

FStatus EtcdClient::revoke_lease(int64_t lease) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  pb::LeaseRevokeResponse resp;
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    return e.lease->LeaseRevoke(ctx.get(), req, &resp);
  });
  if (!s.ok()) return Err{to_error(s, "etcd lease revoke")};
  return {};
}

FStatus EtcdClient::compact(int64_t revision) {
  pb::CompactionRequest req;
  req.set_revision(revision);
  req.set_physical(true);
  pb::CompactionResponse resp;
  const grpc::Status s = impl_->each_endpoint([&](Impl::Endpoint& e) {
    auto ctx = impl_->context();
    return e.kv->Compact(ctx.get(), req, &resp);
  });
  if (!s.ok()) return Err{to_error(s, "etcd compact")};
  return {};
}

namespace {

class GrpcWatch final : public EtcdWatch {
 public:
  GrpcWatch(pb::Watch::Stub& stub, const std::string& prefix, int64_t start_revision) {
    // No deadline: a watch lives until it breaks or is cancelled; keepalive pings notice a dead link.
    stream_ = stub.Watch(&ctx_);
    pb::WatchRequest req;
    auto* create = req.mutable_create_request();
    create->set_key(prefix);
    create->set_range_end(prefix_end(prefix));
    create->set_start_revision(start_revision);
    create->set_progress_notify(true);
    ok_ = stream_->Write(req);
  }
  ~GrpcWatch() override {
    cancel();
    (void)stream_->Finish();
  }

  FResult<WatchBatch> next() override {
    pb::WatchResponse resp;
    for (;;) {
      if (!ok_ || !stream_->Read(&resp)) return broken();
      if (resp.compact_revision() > 0) {
        return fail(FleetError::kCompacted, "etcd watch: revision compacted (compact revision " +
                                                std::to_string(resp.compact_revision()) + ")");
      }
      if (resp.canceled())
        return fail(FleetError::kInternal, "etcd watch cancelled: " + resp.cancel_reason());
      WatchBatch b;
      b.created = resp.created() && resp.events().empty();
      b.revision = resp.header().revision();
      for (const auto& ev : resp.events())
        b.events.push_back({ev.type() == mvccpb::Event::DELETE, from_proto(ev.kv())});
      return b;
    }
  }

  void cancel() override { ctx_.TryCancel(); }

 private:
  FResult<WatchBatch> broken() {
    ok_ = false;
    return fail(FleetError::kUnavailable, "etcd watch stream broke");
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
  bool ok_ = false;
};

}  // namespace

std::unique_ptr<EtcdWatch> EtcdClient::watch(const std::string& prefix, int64_t start_revision) {
  auto& e = impl_->endpoints[impl_->current.load() % impl_->endpoints.size()];
  return std::make_unique<GrpcWatch>(*e.watch, prefix, start_revision);
}

}  // namespace pspgw::fleet
