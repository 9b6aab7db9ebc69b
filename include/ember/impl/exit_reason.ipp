// ember/impl/exit_reason.ipp — the reason an escaping exception gives
// (compiled once, in src/ember.cpp).
#pragma once

#include <cxxabi.h>

#include <exception>
#include <string>

#include "ember/detail/type_name.hpp"
#include "ember/exit_reason.hpp"

namespace ember::detail {

exit_reason reason_of_current_exception() {
  std::exception_ptr x = std::current_exception();
  try {
    throw;
  } catch (const std::exception& e) {
    return exit_reason::thrown(std::move(x), e.what());
  } catch (...) {
    const std::type_info* t = abi::__cxa_current_exception_type();
    return exit_reason::thrown(std::move(x), "unknown exception of type " + (t ? demangle(*t) : std::string("?")) +
                                                 " (not derived from std::exception)");
  }
}

}  // namespace ember::detail
