// WallClock: clock_gettime(CLOCK_REALTIME) as seconds.
#include "common/wall_clock.h"

#include <ctime>

namespace rlb {

double EpochSeconds() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace rlb
