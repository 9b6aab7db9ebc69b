// A downstream program of the io layer: a process waits for an Asio timer
// with ember::io::use_process.
#include <chrono>
#include <cstdio>

#include <boost/asio/steady_timer.hpp>
#include <ember/ember.hpp>
#include <ember/io/io.hpp>

using namespace std::chrono_literals;

int main() {
  ember::io::context io;
  bool waited = false;
  int rc = ember::run([&] {
    boost::asio::steady_timer t(io.get_executor(), 1ms);
    t.async_wait(ember::io::use_process);
    waited = true;
  });
  std::printf("ember consumer io: waited=%d rc=%d\n", int(waited), rc);
  return (rc == 0 && waited) ? 0 : 1;
}
