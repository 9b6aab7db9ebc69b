// examples/rate_limiter — placeholder.
#include "support/support.hpp"
