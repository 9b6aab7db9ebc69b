// ember/detail/type_name.hpp — a C++ type's readable (demangled) name, for
// reports and error messages.
//
// Threads: any thread.  Ownership: returns a fresh string.
#pragma once

#include <string>
#include <typeinfo>

namespace ember::detail {

/// The demangled name of t ("ping", "std::vector<int>"); the mangled name
/// if demangling fails.
std::string demangle(const std::type_info& t);
/// demangle() of a mangled name as typeid(T).name() gives it.
std::string demangle(const char* mangled);

}  // namespace ember::detail
