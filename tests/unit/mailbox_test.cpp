#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "ember/mailbox/mailbox.hpp"

using namespace ember::detail;

namespace {
int value_of(envelope* e) { return payload<int>(e); }
std::vector<int> drain_all(mailbox& mb) {
  mb.drain_inbox();
  std::vector<int> out;
  while (envelope* e = mb.first()) {
    out.push_back(value_of(e));
    mb.unlink(nullptr, e);
    free_envelope(e);
  }
  return out;
}
}  // namespace

TEST_CASE("mailbox: keeps send order through the inbox", "[mailbox]") {
  mailbox mb;
  mb.open();
  for (int i = 0; i < 5; ++i) CHECK(mb.push(make_envelope<int>(1, i)) == mailbox::push_result::queued);
  mb.drain_inbox();
  for (int i = 5; i < 8; ++i) mb.push(make_envelope<int>(1, i));
  CHECK(drain_all(mb) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});
  mb.close();
}

TEST_CASE("mailbox: exactly one pusher sees the blocked owner", "[mailbox]") {
  mailbox mb;
  mb.open();
  REQUIRE(mb.block());
  CHECK(mb.push(make_envelope<int>(1, 1)) == mailbox::push_result::woke_owner);
  CHECK(mb.push(make_envelope<int>(1, 2)) == mailbox::push_result::queued);
  CHECK_FALSE(mb.block());  // messages are waiting
  CHECK_FALSE(mb.unblock());
  CHECK(drain_all(mb) == std::vector<int>{1, 2});
  REQUIRE(mb.block());
  CHECK(mb.unblock());   // a timeout takes the marker
  CHECK_FALSE(mb.unblock());
  mb.close();
}

TEST_CASE("mailbox: a closed mailbox drops pushes and frees what it held", "[mailbox]") {
  mailbox mb;
  mb.open();
  mb.push(make_envelope<int>(1, 1));
  mb.close();
  CHECK(mb.push(make_envelope<int>(1, 2)) == mailbox::push_result::closed);
}

TEST_CASE("mailbox: concurrent senders, per-sender order, one wake per block", "[mailbox][stress]") {
  mailbox mb;
  mb.open();
  constexpr int senders = 4, per = 20000;
  std::atomic<int> wakes{0};
  std::vector<std::thread> ts;
  for (int s = 0; s < senders; ++s)
    ts.emplace_back([&, s] {
      for (int i = 0; i < per; ++i)
        if (mb.push(make_envelope<int>(1, s * per + i)) == mailbox::push_result::woke_owner) ++wakes;
    });
  std::vector<int> last(senders, -1);
  int got = 0, blocks = 0;
  while (got < senders * per) {
    mb.drain_inbox();
    while (envelope* e = mb.first()) {
      int v = value_of(e);
      int s = v / per;
      CHECK(v % per > last[s]);
      last[s] = v % per;
      mb.unlink(nullptr, e);
      free_envelope(e);
      ++got;
    }
    if (got < senders * per && mb.block()) {
      ++blocks;
      while (!mb.unblock() && mb.inbox_empty()) {
      }
      // either a sender took the marker (woke us) or we took it back
    }
  }
  for (auto& t : ts) t.join();
  CHECK(wakes.load() <= blocks);
  mb.close();
}
