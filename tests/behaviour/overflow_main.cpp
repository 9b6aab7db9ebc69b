// A program that overflows a process stack on purpose; ctest checks that the
// report names the process and its stack size.
#include <cstdio>

#include "ember/ember.hpp"

namespace {
int deep(int n) {
  volatile char pad[512];
  pad[0] = char(n);
  return n == 0 ? pad[0] : deep(n + 1) + pad[0];
}
}  // namespace

int main() {
  return ember::run([] {
    ember::spawn_options so;
    so.stack_size = 60 * 1024;  // with the guard page, exactly a 64 KiB class
    auto p = ember::spawn([] { std::printf("%d\n", deep(1)); }, so);
    (void)p;
    ember::receive<int>();
  });
}
