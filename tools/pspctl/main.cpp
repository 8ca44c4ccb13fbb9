// pspctl: query and control a running psp-gateway through its admin socket (README.md here).
//
// Exit status: 0 ok; 1 the gateway answered with an error (or an unreadable answer); 2 usage;
// 3 cannot reach the gateway (no socket, permission denied, no answer within --timeout, connection lost).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>

#include "admin/client.hpp"
#include "admin/commands.hpp"
#include "admin/protocol.hpp"
#include "render.hpp"

namespace pspgw::pspctl {
namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitServerError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoGateway = 3;

struct Options {
  std::string socket;
  std::string instance{admin::kDefaultInstance};
  bool json = false;
  double timeout_s = 5;
  double watch_s = 0;
  double interval_s = 0;
  unsigned count = 0;
  std::string format = "mermaid";
  bool issue_new_keys = false;
  std::string sample;  // on | off
  unsigned sample_rate = 0;
  std::string raw;
  std::vector<std::string> sfc_args;  // VERB ARGS...
  std::string fail_mode;
};

using Render = std::string (*)(const json&);

struct Command {
  admin::Request request;
  Render render;
};

std::string socket_path(const Options& o) {
  return o.socket.empty() ? admin::default_socket_path(o.instance) : o.socket;
}

// Prints why the gateway could not be reached; returns the exit status.
int report(const admin::ClientError& e, const std::string& path, double timeout_s) {
  switch (e.code) {
    case admin::ClientErrc::kNoServer:
      std::fprintf(stderr,
                   "pspctl: no gateway running at %s (is psp-gateway started? -s to choose the socket)\n",
                   path.c_str());
      return kExitNoGateway;
    case admin::ClientErrc::kPermission:
      std::fprintf(stderr,
                   "pspctl: permission denied on %s (the socket is for root and the gateway's group)\n",
                   path.c_str());
      return kExitNoGateway;
    case admin::ClientErrc::kTimeout:
      std::fprintf(stderr, "pspctl: no answer from the gateway at %s within %g s (%s)\n", path.c_str(),
                   timeout_s, e.message.c_str());
      return kExitNoGateway;
    case admin::ClientErrc::kIo:
      std::fprintf(stderr, "pspctl: %s: %s\n", path.c_str(), e.message.c_str());
      return kExitNoGateway;
    case admin::ClientErrc::kProtocol:
      break;
  }
  std::fprintf(stderr, "pspctl: %s: invalid answer: %s\n", path.c_str(), e.message.c_str());
  return kExitServerError;
}

// One request on a fresh connection (a watch survives a gateway restart). Err: the exit status.
Result<admin::Reply, int> exchange(const Options& o, std::string line) {
  const std::string path = socket_path(o);
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  auto client = admin::AdminClient::connect(path, timeout);
  if (!client) return Err{report(client.error(), path, o.timeout_s)};
  auto reply = client->call_line(std::move(line));
  if (!reply) return Err{report(reply.error(), path, o.timeout_s)};
  return std::move(*reply);
}

std::string request_line(const admin::Request& req) {
  std::string line = admin::encode_request(req);
  line.pop_back();
  return line;
}

int print_result(const Options& o, const Command& c, const admin::Reply& r, bool compact_json = false) {
  if (!r.ok) {
    std::fprintf(stderr, "pspctl: %s: %s\n", c.request.cmd.c_str(), r.error.c_str());
    return kExitServerError;
  }
  const std::string text = !o.json ? c.render(r.result) : r.result.dump(compact_json ? -1 : 2) + "\n";
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  return kExitOk;
}

int run_once(const Options& o, const Command& c) {
  auto reply = exchange(o, request_line(c.request));
  return reply ? print_result(o, c, *reply) : reply.error();
}

void print_watch_header(const Options& o, unsigned round) {
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  if (tty) std::fputs("\x1b[H\x1b[2J", stdout);  // clear the screen: a live view
  if (!tty && round > 0) std::fputs("\n", stdout);
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%F %T", localtime_r(&now, &tm));
  std::printf("%s  (every %g s)\n\n", stamp, o.watch_s);
}

// counters --watch, as text: the counters, then their change per second since the previous round.
void print_rates(const json& now, const json& before, std::chrono::steady_clock::duration elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::printf("\nPER SECOND (over the last %.2f s)\n", seconds);
  const std::string text = render_counters(counter_rates(now, before, seconds));
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// --watch: a fresh request every watch_s seconds (like watch(1); Ctrl-C ends it, --count bounds it);
// with --json, one compact JSON document per line (the raw counters: a script takes its own deltas).
int run_watch(const Options& o, const Command& c) {
  const auto period = std::chrono::duration<double>(o.watch_s);
  json before;
  std::chrono::steady_clock::time_point before_at{};
  for (unsigned round = 0; o.count == 0 || round < o.count; ++round) {
    if (round > 0) std::this_thread::sleep_for(period);
    auto reply = exchange(o, request_line(c.request));
    const auto at = std::chrono::steady_clock::now();
    if (!reply) return reply.error();
    if (!o.json && reply->ok) print_watch_header(o, round);
    if (const int rc = print_result(o, c, *reply, /*compact_json=*/true); rc != kExitOk) return rc;
    if (!o.json && c.render == render_counters && round > 0)
      print_rates(reply->result, before, at - before_at);
    before = std::move(reply->result);
    before_at = at;
  }
  return kExitOk;
}

// raw: any JSON line, and the whole response back: for trying the protocol by hand.
int run_raw(const Options& o) {
  const json request = json::parse(o.raw, nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded()) {
    std::fprintf(stderr, "pspctl: raw: the argument is not valid JSON\n");
    return kExitUsage;
  }
  auto reply = exchange(o, request.dump());
  if (!reply) return reply.error();
  const json full = reply->ok ? json{{"ok", true}, {"result", reply->result}}
                              : json{{"ok", false}, {"code", reply->code}, {"error", reply->error}};
  std::printf("%s\n", full.dump(2).c_str());
  return reply->ok ? kExitOk : kExitServerError;
}

Command command_for(std::string_view name, const Options& o) {
  if (name == admin::cmd::kTunnels) return {{std::string(name)}, render_tunnels};
  if (name == admin::cmd::kCounters) return {{std::string(name)}, render_counters};
  if (name == admin::cmd::kPeers) return {{std::string(name)}, render_peers};
  if (name == admin::cmd::kReload) return {{std::string(name)}, render_fields};
  if (name == admin::cmd::kSample) {
    json args{{"on", o.sample == "on"}};
    if (o.sample_rate != 0) args["rate"] = o.sample_rate;
    return {{std::string(name), args}, render_fields};
  }
  if (name == admin::cmd::kPipeline) return {{std::string(name), {{"format", o.format}}}, render_pipeline};
  if (name == admin::cmd::kRotateKeys) {
    return {{std::string(name), {{"issue_new_keys", o.issue_new_keys}}}, render_fields};
  }
  if (name == admin::cmd::kSfc) {
    std::vector<std::string> argv = o.sfc_args;
    if (!o.fail_mode.empty()) argv.insert(argv.end(), {"--fail-mode", o.fail_mode});
    return {{std::string(name), {{"argv", argv}}}, render_sfc};
  }
  return {{std::string(admin::cmd::kStatus)}, render_fields};
}

void add_commands(CLI::App& app, Options& o) {
  app.add_subcommand("status", "gateway summary: instance, version, addresses, tunnel and peer counts");
  app.add_subcommand("tunnels", "the tunnel table: VIP pairs, peer, state, SPIs, packets");
  auto* counters = app.add_subcommand("counters", "pipe, port, PSP and per-tunnel counters");
  auto* watch = counters
                    ->add_option("--watch", o.watch_s,
                                 "live view, like watch(1): repeat every SECS seconds (default 1) with each "
                                 "counter's change per second; Ctrl-C ends it")
                    ->expected(0, 1)
                    ->default_str("1")
                    ->check(CLI::PositiveNumber);
  counters->add_option("--interval", o.interval_s, "with --watch: seconds between updates (as --watch SECS)")
      ->needs(watch)
      ->check(CLI::PositiveNumber);
  counters->add_option("--count", o.count, "with --watch: stop after N updates (default: until interrupted)")
      ->needs(watch);
  auto* pipeline = app.add_subcommand("pipeline", "the live pipeline (pipes, entries, targets)");
  pipeline->add_option("--format", o.format, "mermaid (default) or json")
      ->check(CLI::IsMember({"mermaid", "json"}));
  auto* rotate =
      app.add_subcommand("rotate-keys", "rotate the master key (as a peer's key-rotation request does)");
  rotate->add_flag("--issue-new-keys", o.issue_new_keys,
                   "start the re-keys now (they follow every rotation anyway)");
  app.add_subcommand("peers", "configured peers: state, tunnels, RPC outcomes");
  auto* sfc =
      app.add_subcommand("sfc", "service chains: show [--json], pair-add IN OUT PAIR, chain-add CHAIN, ...");
  sfc->add_option("VERB", o.sfc_args,
                  "pair-add IN_PORT OUT_PORT PAIR | chain-add CHAIN | group-add CHAIN GROUP | "
                  "group-pair-add GROUP PAIR | classifier-add CHAIN PORT entry-lport|exit-lport "
                  "bi-directional|uni-directional NAME [MATCH] | pair-del|chain-del|group-del|group-pair-del|"
                  "classifier-del ... | show")
      ->required();
  sfc->add_option("--fail-mode", o.fail_mode, "group-add: open (bypass a hop with no live instance) or close")
      ->check(CLI::IsMember({"open", "close"}));
  app.add_subcommand("reload",
                     "re-read the config file and apply the difference (as SIGHUP); exit 1 and the reason if "
                     "the gateway refuses it (the running config stays)");
  auto* sample = app.add_subcommand(
      "sample",
      "switch sampling (as --sample-rate: 1 in 2^N egress packets get the S bit and a copy to the log, "
      "received ones with the S bit are logged) on or off at run time");
  sample->add_option("STATE", o.sample, "on or off")->required()->check(CLI::IsMember({"on", "off"}));
  sample
      ->add_option("--rate", o.sample_rate,
                   "with on: N, sample 1 in 2^N packets (1..16; default: the rate in use, "
                   "else --sample-rate's, else 10)")
      ->check(CLI::Range(1u, 16u));
  auto* raw = app.add_subcommand("raw", "send one JSON request as is and print the whole response");
  raw->add_option("JSON", o.raw, R"(e.g. '{"cmd": "status"}')")->required();
}

int run(int argc, char** argv) {
  Options o;
  CLI::App app{"pspctl: query and control a running psp-gateway through its admin socket"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the command too
  auto* socket =
      app.add_option("-s,--socket", o.socket, "admin socket path (default: /run/psp-gateway/INSTANCE.sock)");
  app.add_option("-i,--instance", o.instance, "gateway instance name (default: psp0)")->excludes(socket);
  app.add_flag("--json", o.json, "print the result as JSON");
  app.add_option("-t,--timeout", o.timeout_s, "seconds to wait for the gateway (default: 5)")
      ->check(CLI::Range(0.001, 3600.0));
  add_commands(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  const std::string name = app.get_subcommands().front()->get_name();
  if (name == "raw") return run_raw(o);
  if (name == "sample" && o.sample == "off" && o.sample_rate != 0) {
    std::fprintf(stderr, "pspctl: sample off takes no --rate\n");
    return kExitUsage;
  }
  if (o.interval_s > 0) o.watch_s = o.interval_s;
  const Command command = command_for(name, o);
  return o.watch_s > 0 ? run_watch(o, command) : run_once(o, command);
}

}  // namespace
}  // namespace pspgw::pspctl

int main(int argc, char** argv) {
  try {
    return pspgw::pspctl::run(argc, argv);
  } catch (const std::exception& e) {  // out of memory, or a bug: say so rather than abort
    std::fprintf(stderr, "pspctl: internal error: %s\n", e.what());
    return 1;
  }
}
