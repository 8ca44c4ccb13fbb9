#include "fleet/fleet.hpp"

namespace pspgw::fleet {

FResult<std::unique_ptr<Fleet>> Fleet::create(FleetOptions options) {
  if (!valid_host_name(options.self.host))
    return fail(FleetError::kBadRecord,
                "fleet host name '" + options.self.host + "': [A-Za-z0-9._-], 1..253");
  auto client = EtcdClient::create(options.etcd);
  if (!client) return Err{client.error()};
  return std::unique_ptr<Fleet>(new Fleet(std::move(options), std::move(*client)));
}

Fleet::Fleet(FleetOptions options, std::unique_ptr<EtcdClient> client)
    : options_(std::move(options)), client_(std::move(client)) {
  if (!options_.log) options_.log = [](std::string_view) {};
  registration_ = std::make_unique<Registration>(*client_, host_key(options_.prefix, options_.self.host),
                                                 options_.lease_ttl, options_.log);
  registration_->set_record(encode_record(options_.self));
  sync_ = std::make_unique<
      DirectorySync>(*client_, options_.prefix, options_.log, [this](const Directory& d) {
    if (!options_.on_change) return;
    options_.on_change(FleetView{d.peers(options_.self.host, options_.vip_family), d.policy(), d.revision()});
  });
}

Fleet::~Fleet() {
  stop();
}

void Fleet::start() {
  registration_thread_ = std::thread([this] { registration_->run(); });
  sync_thread_ = std::thread([this] { sync_->run(); });
}

void Fleet::stop() {
  if (sync_) sync_->stop();
  if (registration_) registration_->stop();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (registration_thread_.joinable()) registration_thread_.join();
}

void Fleet::update_self(const HostRecord& self) {
  registration_->set_record(encode_record(self));
}

FleetStatus Fleet::status() const {
  return {sync_->status(), registration_->status(), client_->endpoint(), options_.self.host};
}

}  // namespace pspgw::fleet
