#include "render.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <vector>

namespace pspgw::pspctl {
namespace {

using nlohmann::json;

std::string spi_text(const json& v) {
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) return v.dump();
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%08llx", static_cast<unsigned long long>(v.get<uint64_t>()));
  return buf;
}

std::string scalar_text(const json& v, Cell cell) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (cell == Cell::kSpi) return spi_text(v);
  return v.dump();
}

void pad_to(std::string& line, std::size_t width, std::string_view text, bool right) {
  const std::size_t fill = width > text.size() ? width - text.size() : 0;
  if (right) line.append(fill, ' ');
  line += text;
  if (!right) line.append(fill, ' ');
}

void append_row(std::string& out, std::span<const Column> columns, std::span<const std::string> cells,
                std::span<const std::size_t> widths) {
  std::string line;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    if (c > 0) line += "  ";
    pad_to(line, widths[c], cells[c], columns[c].cell == Cell::kCount);
  }
  line.erase(line.find_last_not_of(' ') + 1);
  out += line;
  out += '\n';
}

void flatten(const json& object, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  for (const auto& [key, value] : object.items()) {
    if (value.is_object() && !value.empty()) {
      flatten(value, prefix + key + ".", out);
    } else {
      out.emplace_back(prefix + key, format_cell(value, Cell::kText));
    }
  }
}

const json& member(const json& object, std::string_view key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

void append_section(std::string& out, std::string_view title, const std::string& body) {
  if (!out.empty()) out += '\n';
  out += title;
  out += '\n';
  out += body;
}

constexpr std::array kTunnelColumns = {
    Column{"LOCAL VIP", "local_vip"},
    Column{"REMOTE VIP", "remote_vip"},
    Column{"PEER", "peer"},
    Column{"STATE", "state"},
    Column{"REMOTE PIP", "remote_pip"},
    Column{"TX SPI", "tx_spi", Cell::kSpi},
    Column{"RX SPIS", "rx_spis", Cell::kSpi},
    Column{"TX PKTS", "tx_packets", Cell::kCount},
    Column{"RX PKTS", "rx_packets", Cell::kCount},
};
constexpr std::array kPeerColumns = {
    Column{"PEER", "name"},
    Column{"STATE", "state"},
    Column{"TUNNELS", "tunnels", Cell::kCount},
    Column{"PENDING", "pending", Cell::kCount},
    Column{"RPC OK", "rpcs_ok", Cell::kCount},
    Column{"REFUSED", "rpcs_refused", Cell::kCount},
    Column{"RPC FAIL", "rpcs_failed", Cell::kCount},
    Column{"LAST ERROR", "last_error"},
};
constexpr std::array kPipeColumns = {
    Column{"PIPE", "name"},
    Column{"ENTRIES", "entries", Cell::kCount},
    Column{"HITS", "hits", Cell::kCount},
    Column{"MISSES", "misses", Cell::kCount},
    Column{"DROPS", "drops", Cell::kCount},
};
constexpr std::array kPortColumns = {
    Column{"PORT", "name"},
    Column{"RX PKTS", "rx_packets", Cell::kCount},
    Column{"RX BYTES", "rx_bytes", Cell::kCount},
    Column{"TX PKTS", "tx_packets", Cell::kCount},
    Column{"TX BYTES", "tx_bytes", Cell::kCount},
    Column{"DROPS", "drops", Cell::kCount},
};
constexpr std::array kTunnelCounterColumns = {
    Column{"LOCAL VIP", "local_vip"},
    Column{"REMOTE VIP", "remote_vip"},
    Column{"TX PKTS", "tx_packets", Cell::kCount},
    Column{"TX BYTES", "tx_bytes", Cell::kCount},
    Column{"RX PKTS", "rx_packets", Cell::kCount},
    Column{"RX BYTES", "rx_bytes", Cell::kCount},
};
constexpr std::array kNameValueColumns = {Column{"COUNTER", "name"}, Column{"VALUE", "value", Cell::kCount}};
constexpr std::array kSfcClassifierColumns = {
    Column{"CLASSIFIER", "name"},
    Column{"CHAIN", "chain"},
    Column{"PORT", "port"},
    Column{"DIRECTION", "direction"},
    Column{"SYMMETRIC", "symmetric"},
    Column{"PKTS", "packets", Cell::kCount},
    Column{"RETURN PKTS", "return_packets", Cell::kCount},
};
constexpr std::array kSfcHopColumns = {
    Column{"CHAIN", "chain"},
    Column{"HOP", "hop", Cell::kCount},
    Column{"GROUP", "group"},
    Column{"PKTS", "packets", Cell::kCount},
};
constexpr std::array kSfcInstanceColumns = {
    Column{"PAIR", "pair"},
    Column{"GROUP", "group"},
    Column{"IN", "in"},
    Column{"OUT", "out"},
    Column{"LIVE", "live"},
    Column{"IN TX", "in_tx", Cell::kCount},
    Column{"OUT RX", "out_rx", Cell::kCount},
    Column{"OUT TX", "out_tx", Cell::kCount},
    Column{"IN RX", "in_rx", Cell::kCount},
    Column{"PROBES", "probes_sent", Cell::kCount},
    Column{"BACK", "probes_returned", Cell::kCount},
};
constexpr std::array kSfcGroupColumns = {
    Column{"GROUP", "name"},
    Column{"CHAIN", "chain"},
    Column{"FAIL MODE", "fail_mode"},
    Column{"PAIRS", "pairs"},
};
constexpr std::array kSfcChainColumns = {Column{"CHAIN", "name"}, Column{"GROUPS", "groups"}};
constexpr std::array kSfcMatchColumns = {Column{"CLASSIFIER", "name"}, Column{"MATCH", "match"},
                                         Column{"NORMALIZED", "normalized"}};

}  // namespace

std::string format_cell(const json& value, Cell cell) {
  if (!value.is_array()) return scalar_text(value, cell);
  if (value.empty()) return "-";
  std::string text;
  for (const auto& v : value) {
    if (!text.empty()) text += ',';
    text += scalar_text(v, cell);
  }
  return text;
}

std::string render_table(std::span<const Column> columns, const json& rows) {
  std::vector<std::vector<std::string>> cells;
  if (rows.is_array()) {
    for (const auto& row : rows) {
      auto& line = cells.emplace_back();
      for (const auto& col : columns) line.push_back(format_cell(member(row, col.key), col.cell));
    }
  }
  std::vector<std::size_t> widths;
  std::vector<std::string> headers;
  for (std::size_t c = 0; c < columns.size(); ++c) {
    headers.emplace_back(columns[c].header);
    std::size_t w = columns[c].header.size();
    for (const auto& line : cells) w = std::max(w, line[c].size());
    widths.push_back(w);
  }
  std::string out;
  append_row(out, columns, headers, widths);
  for (const auto& line : cells) append_row(out, columns, line, widths);
  if (cells.empty()) out += "(none)\n";
  return out;
}

std::string render_fields(const json& object) {
  if (!object.is_object()) return format_cell(object, Cell::kText) + "\n";
  std::vector<std::pair<std::string, std::string>> fields;
  flatten(object, "", fields);
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : fields) {
    pad_to(out, width + 3, key + ":", false);  // "key:" and two blanks
    out += value;
    out += '\n';
  }
  return out;
}

std::string render_tunnels(const json& result) {
  return render_table(kTunnelColumns, member(result, "tunnels"));
}

std::string render_peers(const json& result) {
  return render_table(kPeerColumns, member(result, "peers"));
}

std::string render_counters(const json& result) {
  std::string out;
  if (const json& pipes = member(result, "pipes"); !pipes.is_null()) {
    append_section(out, "PIPES", render_table(kPipeColumns, pipes));
  }
  if (const json& ports = member(result, "ports"); !ports.is_null()) {
    append_section(out, "PORTS", render_table(kPortColumns, ports));
  }
  if (const json& psp = member(result, "psp"); psp.is_object()) {
    json rows = json::array();
    for (const auto& [name, value] : psp.items()) rows.push_back({{"name", name}, {"value", value}});
    append_section(out, "PSP", render_table(kNameValueColumns, rows));
  }
  if (const json& tunnels = member(result, "tunnels"); !tunnels.is_null()) {
    append_section(out, "TUNNELS", render_table(kTunnelCounterColumns, tunnels));
  }
  if (const json& sfc = member(result, "sfc"); sfc.is_object()) append_sfc_counters(out, sfc);
  return out;
}

void append_sfc_counters(std::string& out, const json& sfc) {
  append_section(out, "SFC CLASSIFIERS", render_table(kSfcClassifierColumns, member(sfc, "classifiers")));
  append_section(out, "SFC HOPS", render_table(kSfcHopColumns, member(sfc, "hops")));
  append_section(out, "SFC INSTANCES", render_table(kSfcInstanceColumns, member(sfc, "instances")));
}

std::string render_sfc(const json& result) {
  if (!result.contains("counters")) return render_fields(result);  // a change verb: {ok, entries, groups}
  std::string out;
  append_section(out, "CHAINS", render_table(kSfcChainColumns, member(result, "chains")));
  append_section(out, "GROUPS", render_table(kSfcGroupColumns, member(result, "groups")));
  append_section(out, "MATCHES", render_table(kSfcMatchColumns, member(result, "classifiers")));
  append_sfc_counters(out, member(result, "counters"));
  return out;
}

namespace {

// What identifies a row of a counters list across two results.
std::string row_key(const json& row) {
  if (!row.is_object()) return {};
  if (row.contains("name")) return row["name"].dump();
  return member(row, "local_vip").dump() + ">" + member(row, "remote_vip").dump();
}

json rates_of(const json& now, const json& before, double seconds) {
  if (now.is_number_unsigned() || now.is_number_integer()) {
    const uint64_t a = now.get<uint64_t>();
    const uint64_t b = before.is_number() ? before.get<uint64_t>() : 0;
    return a >= b ? static_cast<uint64_t>(std::llround(static_cast<double>(a - b) / seconds)) : 0;
  }
  if (now.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : now.items()) out[key] = rates_of(value, member(before, key), seconds);
    return out;
  }
  if (now.is_array()) {
    json out = json::array();
    for (const auto& row : now) {
      json match;
      if (before.is_array()) {
        for (const auto& old : before) {
          if (row_key(old) == row_key(row)) {
            match = old;
            break;
          }
        }
      }
      out.push_back(rates_of(row, match, seconds));
    }
    return out;
  }
  return now;  // names, states
}

}  // namespace

json counter_rates(const json& now, const json& before, double seconds) {
  return rates_of(now, before, seconds > 0 ? seconds : 1);
}

std::string render_pipeline(const json& result) {
  if (!result.is_string()) return result.dump(2) + "\n";
  std::string text = result.get<std::string>();
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

}  // namespace pspgw::pspctl
