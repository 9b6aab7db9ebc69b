// A downstream program: sums 1..10 over ten processes and prints the result.
#include <chrono>
#include <cstdio>
#include <vector>

#include <ember/ember.hpp>

using namespace std::chrono_literals;

struct part {
  int value;
};

int main() {
  int total = -1;
  int rc = ember::run([&total] {
    const ember::pid parent = ember::self();
    std::vector<ember::pid> workers;
    for (int i = 1; i <= 10; ++i)
      workers.push_back(ember::spawn([parent, i] { ember::send(parent, part{i}); }));
    int sum = 0;
    for (std::size_t n = 0; n < workers.size(); ++n)
      sum += ember::receive([](part p) { return p.value; },
                            ember::after(10s, [] { return -1000; }));
    total = sum;
  });
  std::printf("ember consumer: sum=%d rc=%d\n", total, rc);
  return (rc == 0 && total == 55) ? 0 : 1;
}
