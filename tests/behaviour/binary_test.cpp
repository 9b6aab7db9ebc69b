// ember::binary — the rules at the top of include/ember/binary.hpp: small
// binaries are inline and copied; large ones are stored once, shared by
// every copy and every message, and freed with the last copy.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "support/support.hpp"

using ember_test::in_process;
using ember_test::scaled;

namespace {
struct hold {
  ember::binary b;
};
struct held {};
struct let_go {};
}  // namespace

TEST_CASE("binary: up to 64 bytes inline, longer ones shared", "[binary]") {
  const std::size_t blocks = ember::binary::shared_blocks();
  ember::binary small(std::string(64, 's'));
  CHECK(!small.shared());
  CHECK(small.use_count() == 0);
  CHECK(ember::binary::shared_blocks() == blocks);
  ember::binary big(std::string(65, 'b'));
  CHECK(big.shared());
  CHECK(big.use_count() == 1);
  CHECK(ember::binary::shared_blocks() == blocks + 1);
  {
    ember::binary copy = big;
    CHECK(copy.data() == big.data());  // the same bytes, not a copy
    CHECK(big.use_count() == 2);
    ember::binary moved = std::move(copy);
    CHECK(big.use_count() == 2);
    CHECK(moved == big);
    CHECK(copy.empty());  // NOLINT: a moved-from binary is empty
  }
  CHECK(big.use_count() == 1);
  ember::binary made = ember::binary::make(1000, [](std::span<std::byte> out) {
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::byte(i % 251);
  });
  CHECK(made.size() == 1000);
  CHECK(made.data()[999] == std::byte(999 % 251));
  small = made;
  CHECK(small.shared());
  CHECK(made.use_count() == 2);
  CHECK(small.view() == made.view());
  CHECK(ember::binary(std::string_view("abc")) == ember::binary("abc", 3));
}

TEST_CASE("binary: sent to 10,000 processes, it is stored once", "[binary]") {
  const std::size_t blocks = ember::binary::shared_blocks();
  const std::size_t bytes = ember::binary::shared_bytes();
  const std::size_t n = scaled(10000, 2000);
  in_process(2, [&] {
    const ember::pid me = ember::self();
    std::vector<ember::pid> holders;
    for (std::size_t i = 0; i < n; ++i)
      holders.push_back(ember::spawn([me] {
        hold h = ember::receive<hold>();
        ember::send(me, held{});
        ember::receive<let_go>();
      }));
    const ember::binary frame(std::string(1 << 20, 'f'));  // 1 MiB
    for (ember::pid p : holders) ember::send(p, hold{frame});
    for (std::size_t i = 0; i < n; ++i) ember::receive<held>();
    CHECK(ember::binary::shared_blocks() == blocks + 1);
    CHECK(ember::binary::shared_bytes() == bytes + (1u << 20));
    CHECK(frame.use_count() == n + 1);
    for (ember::pid p : holders) {
      ember::monitor(p);
      ember::send(p, let_go{});
    }
    for (std::size_t i = 0; i < n; ++i) ember::receive<ember::down>();
    CHECK(frame.use_count() == 1);
  });
  CHECK(ember::binary::shared_blocks() == blocks);
  CHECK(ember::binary::shared_bytes() == bytes);
}
