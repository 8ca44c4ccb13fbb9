#include "render.hpp"

#include <gtest/gtest.h>

#include "admin/testing/fake_handler.hpp"

namespace pspgw::pspctl {
namespace {

using nlohmann::json;

TEST(PspctlRender, TableAlignsTextLeftAndCountsRight) {
  constexpr Column cols[] = {{"NAME", "name"}, {"PKTS", "pkts", Cell::kCount}, {"NOTE", "note"}};
  const json rows = json::array({{{"name", "psp0"}, {"pkts", 7}, {"note", "ok"}},
                                 {{"name", "udp:1000"}, {"pkts", 123456}, {"note", ""}}});
  EXPECT_EQ(render_table(cols, rows),
            "NAME        PKTS  NOTE\n"
            "psp0           7  ok\n"
            "udp:1000  123456\n");
}

TEST(PspctlRender, MissingAndNullCellsPrintADashAndUnknownKeysAreIgnored) {
  constexpr Column cols[] = {{"A", "a"}, {"B", "b", Cell::kCount}};
  const json rows = json::array({{{"a", nullptr}, {"extra", 1}}});
  EXPECT_EQ(render_table(cols, rows), "A  B\n-  -\n");
}

TEST(PspctlRender, EmptyOrAbsentRowsSayNone) {
  constexpr Column cols[] = {{"PEER", "name"}};
  EXPECT_EQ(render_table(cols, json::array()), "PEER\n(none)\n");
  EXPECT_EQ(render_peers(json::object()), render_peers(json{{"peers", json::array()}}));
}

TEST(PspctlRender, CellFormats) {
  EXPECT_EQ(format_cell(json(0x80000001u), Cell::kSpi), "0x80000001");
  EXPECT_EQ(format_cell(json(2), Cell::kSpi), "0x00000002");
  EXPECT_EQ(format_cell(json::array({2, 0xabcdef01u}), Cell::kSpi), "0x00000002,0xabcdef01");
  EXPECT_EQ(format_cell(json::array(), Cell::kSpi), "-");
  EXPECT_EQ(format_cell(json(-1), Cell::kSpi), "-1") << "not an SPI: shown as it is";
  EXPECT_EQ(format_cell(json(18446744073709551615ull), Cell::kCount), "18446744073709551615");
  EXPECT_EQ(format_cell(json(true), Cell::kText), "true");
  EXPECT_EQ(format_cell(json("10.0.0.1"), Cell::kText), "10.0.0.1");
  EXPECT_EQ(format_cell(json(), Cell::kCount), "-");
}

TEST(PspctlRender, Tunnels) {
  const std::string text = render_tunnels(admin::testing::fake_tunnels());
  EXPECT_EQ(
      text,
      "LOCAL VIP  REMOTE VIP  PEER            STATE      REMOTE PIP  TX SPI      RX SPIS                "
      "TX PKTS  RX PKTS\n"
      "10.0.0.1   10.0.1.1    192.0.2.2:3000  connected  192.0.2.2   0x80000001  0x00000002,0x80000003  "
      "1234567  1200000\n"
      "fd00::1    fd00:1::1   192.0.2.2:3000  in-flight  -           -           0x00000004             "
      "      0        0\n");
}

TEST(PspctlRender, Peers) {
  EXPECT_EQ(render_peers(admin::testing::fake_peers()),
            "PEER            STATE      TUNNELS  PENDING  RPC OK  REFUSED  RPC FAIL  LAST ERROR\n"
            "192.0.2.2:3000  connected        2        1       5        2         1  deadline exceeded\n"
            "192.0.2.3:3000  backoff          0        0       0        0         4  connection refused\n");
}

TEST(PspctlRender, CountersHaveOneSectionPerGroupPresent) {
  EXPECT_EQ(render_counters(admin::testing::fake_counters()),
            "PIPES\n"
            "PIPE         ENTRIES     HITS  MISSES  DROPS\n"
            "EGR_ACL            2  1234567       3      0\n"
            "PSP_DECRYPT        1  1200010       0      0\n"
            "SYND_STATS         3       10       0     10\n"
            "\n"
            "PORTS\n"
            "PORT      RX PKTS    RX BYTES  TX PKTS    TX BYTES  DROPS\n"
            "psp0      1234570  1600000000  1200000  1600000000      0\n"
            "udp:1000  1200010  1700000000  1234567  1750000000      2\n"
            "\n"
            "PSP\n"
            "COUNTER           VALUE\n"
            "auth_failures         7\n"
            "framing_errors        3\n"
            "rx_packets      1200000\n"
            "tx_packets      1234567\n"
            "\n"
            "TUNNELS\n"
            "LOCAL VIP  REMOTE VIP  TX PKTS    TX BYTES  RX PKTS    RX BYTES\n"
            "10.0.0.1   10.0.1.1    1234567  1700000000  1200000  1650000000\n"
            "fd00::1    fd00:1::1         0           0        0           0\n");
  EXPECT_EQ(render_counters(json{{"psp", {{"tx_packets", 5}}}}),
            "PSP\nCOUNTER     VALUE\ntx_packets      5\n");
  EXPECT_EQ(render_counters(json::object()), "");
}

TEST(PspctlRender, FieldsAreAlignedAndNestedObjectsFlattened) {
  const json status = {
      {"instance", "psp0"}, {"workers", 2}, {"grpc", {{"address", "0.0.0.0:3000"}}}, {"local_pip", nullptr}};
  EXPECT_EQ(render_fields(status),
            "grpc.address:  0.0.0.0:3000\n"
            "instance:      psp0\n"
            "local_pip:     -\n"
            "workers:       2\n");
  EXPECT_EQ(render_fields(json("done")), "done\n");
}

TEST(PspctlRender, PipelineMermaidIsRawTextAndJsonIsPretty) {
  EXPECT_EQ(render_pipeline(json(admin::testing::kFakeMermaid)), admin::testing::kFakeMermaid);
  EXPECT_EQ(render_pipeline(json("flowchart LR")), "flowchart LR\n");
  EXPECT_EQ(render_pipeline(json{{"pipes", json::array()}}), "{\n  \"pipes\": []\n}\n");
}

}  // namespace
}  // namespace pspgw::pspctl
