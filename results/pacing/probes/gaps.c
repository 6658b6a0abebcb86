// How often, and for how long, this CPU is taken from a thread that never sleeps: a tight
// loop reads the monotonic clock for 3 s and counts the gaps between two readings (an
// interrupt, a tick, the host). On a quiet CPU consecutive readings are ~20-50 ns apart.
// Used by results/pacing/run.sh; pin it with taskset to the CPU to look at.
#include <stdint.h>
#include <stdio.h>
#include <time.h>

static inline int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(void) {
  const int64_t secs = 3;
  int64_t start = now_ns(), prev = start, end = start + secs * 1000000000LL;
  long over5 = 0, over20 = 0, over50 = 0;
  int64_t lost = 0, max = 0;
  for (;;) {
    int64_t t = now_ns(), gap = t - prev;
    prev = t;
    if (t > end) break;
    if (gap > 5000) { over5++; lost += gap; }
    if (gap > 20000) over20++;
    if (gap > 50000) over50++;
    if (gap > max) max = gap;
  }
  printf("spinning %llds: %ld gaps > 5 us (%.0f/s), %ld > 20 us, %ld > 50 us, max %.1f us; "
         "%.2f%% of the time lost in them\n",
         (long long)secs, over5, over5 / (double)secs, over20, over50, max / 1e3,
         100.0 * lost / (secs * 1e9));
  return 0;
}
