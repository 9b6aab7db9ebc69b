#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

// LeakSanitizer: a process that waits with no timeout while it unwinds for
// a kill is abandoned there (decision 0011), and the kill's in-flight
// exception object is lost with its frames.  One test does that on purpose.
extern "C" const char* __lsan_default_suppressions() { return "leak:check_kill\n"; }
