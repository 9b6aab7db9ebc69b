// examples/hello — spawn a process, send it a message, receive the reply.
#include <chrono>
#include <string>

#include <fmt/core.h>

#include "ember/ember.hpp"

using namespace std::chrono_literals;

struct greet {
  ember::pid from;
  std::string name;
};

int main() {
  return ember::run([] {
    // A process that answers one greeting, then exits.
    ember::pid greeter = ember::spawn([] {
      ember::receive([](greet g) { ember::send(g.from, "hello, " + g.name); });
    });

    ember::send(greeter, greet{ember::self(), "world"});

    // Wait up to one second for the reply.
    std::string reply = ember::receive(
        [](std::string s) { return s; },
        ember::after(1s, [] { return std::string("no reply"); }));
    fmt::print("{}\n", reply);
    if (reply == "no reply") ember::exit(ember::exit_reason::error("timed out"));
  });
}
