// Helpers compiled into every stand-in library (see standin.h).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <atomic>
#include <mutex>

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
  long at = env_long(name, 0);
  std::lock_guard<std::mutex> lk(mu);
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
