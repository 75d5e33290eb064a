// WallClock: the current wall-clock time as one double, for access logs, the status report
// and the environ's zc.resumelb.time (durations use the monotonic clock instead).
//
// Thread rules: any thread.
#ifndef RESUMELB_COMMON_WALL_CLOCK_H_
#define RESUMELB_COMMON_WALL_CLOCK_H_

namespace rlb {

// Seconds since the Unix epoch (CLOCK_REALTIME), with sub-microsecond resolution, like
// Python's time.time(). Can jump when the system clock is set.
double EpochSeconds();

}  // namespace rlb

#endif  // RESUMELB_COMMON_WALL_CLOCK_H_
