// examples/driver_timeout — placeholder.
#include "support/support.hpp"
