// psp-gateway: the software PSP gateway daemon (README.md, docs/architecture.md).
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <exception>
#include <iostream>

#include "gateway/config.hpp"
#include "gateway/flags.hpp"
#include "gateway/gateway.hpp"
#include "gateway/log.hpp"

namespace {

// SIGHUP: re-read the config and apply the difference (reload.hpp); a refused config leaves the running
// one in place, and the gateway logs the error as at start.
void reload(pspgw::gateway::Gateway& gw) {
  sd_notify(0, "RELOADING=1");
  (void)gw.reload();
  sd_notify(0, "READY=1");
}

int run(int argc, char** argv) {
  using namespace pspgw::gateway;
  auto flags = parse_flags(argc, argv);
  if (!flags) {
    (flags.error().code == 0 ? std::cout : std::cerr) << flags.error().text << std::flush;
    return flags.error().code;
  }
  const Logger logger(LoggerOptions{flags->log_level, default_timestamps()});
  auto config = load_config(flags->config_path, {});
  if (!config) {
    logger.log(LogLevel::kError, config.error().message);
    return 2;
  }
  // Block the stop and reload signals in every thread; the main thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto gw = Gateway::create(
      *flags, std::move(*config),
      system_ports(flags->udp_zero_checksum, flags->mode == EncapMode::kTunnel, flags->tap_queue_len));
  if (!gw) {
    logger.log(LogLevel::kError, gw.error());
    return 1;
  }
  if (!flags->dump_pipeline.empty()) {  // the graph this config builds; nothing is opened
    std::cout << (*gw)->dump_pipeline(flags->dump_pipeline) << std::flush;
    return 0;
  }
  if (auto s = (*gw)->start(); !s) {
    logger.log(LogLevel::kError, s.error());
    return 1;
  }
  // Type=notify: ports open, workers running, gRPC and the admin socket listening. Without NOTIFY_SOCKET
  // (not under systemd) this does nothing.
  sd_notify(0, "READY=1");
  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) reload(**gw);
  sd_notify(0, "STOPPING=1");
  logger.log(LogLevel::kInfo, "signal " + std::to_string(sig) + ", stopping");
  // In this order: the admin socket, /metrics and gRPC stop taking requests, the control thread stops,
  // the workers finish their last batch and what the control thread queued, then the destructors zero
  // every key (master keys, SAs, key caches: Secret) and close the TAPs (the kernel removes them).
  (*gw)->stop();
  gw->reset();
  logger.log(LogLevel::kInfo,
             "stopped: workers drained, gRPC and admin socket closed, keys zeroed, TAPs removed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // allocation failure, a thread that could not start: say so and stop
    std::cerr << "psp-gateway: fatal: " << e.what() << '\n';
    return 1;
  }
}
