// Helpers compiled into every stand-in library (see standin.h).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "standin.h"

namespace standin {

long env_long(const char* name, long def) {
  const char* v = getenv(name);
  if (!v || !*v) return def;
  char* end = nullptr;
  long x = strtol(v, &end, 10);
  if (*end) {
    note("%s=%s is not an integer; ignored", name, v);
    return def;
  }
  return x;
}

bool countdown(const char* name, long* counter) {
  static std::mutex mu;
  static std::map<std::string, std::string> armed;  // each variable's value when last seen
  const char* v = getenv(name);
  std::string now = v ? v : "";
  long at = env_long(name, 0);
  std::lock_guard<std::mutex> lk(mu);
  // Setting the variable (again) while the process runs re-arms it: the
  // count starts from the next call.
  auto it = armed.find(name);
  if (it == armed.end()) {
    armed[name] = now;
  } else if (it->second != now) {
    it->second = now;
    *counter = 0;
  }
  ++*counter;
  return at > 0 && *counter == at;
}

void note(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("standin: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

}  // namespace standin
