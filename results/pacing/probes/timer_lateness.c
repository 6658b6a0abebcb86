// How late a timerfd wakes a thread that sleeps in epoll_wait: armed for absolute times
// PERIOD_US apart (1 ns timer slack), N wake-ups, lateness percentiles. This is the floor
// of `--pacing sleep` and what hybrid's margin has to cover.
// Usage: timer_lateness PERIOD_US N.  Used by results/pacing/run.sh.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s PERIOD_US N\n", argv[0]); return 2; }
  long period_us = atol(argv[1]);
  int n = atoi(argv[2]);
  if (period_us <= 0 || n <= 0) { fprintf(stderr, "PERIOD_US and N must be positive\n"); return 2; }
  prctl(PR_SET_TIMERSLACK, 1);
  int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t t0 = ts.tv_sec * 1000000000LL + ts.tv_nsec;
  int64_t *late = malloc(sizeof(int64_t) * n);
  for (int i = 0; i < n; i++) {
    int64_t at = t0 + (int64_t)(i + 1) * period_us * 1000;
    struct itimerspec it = {0};
    it.it_value.tv_sec = at / 1000000000;
    it.it_value.tv_nsec = at % 1000000000;
    timerfd_settime(fd, TFD_TIMER_ABSTIME, &it, NULL);
    struct epoll_event e;
    while (epoll_wait(ep, &e, 1, 1000) < 1) {}
    uint64_t expiries;
    if (read(fd, &expiries, sizeof expiries) < 0) {}  // readiness cleared; count unused
    clock_gettime(CLOCK_MONOTONIC, &ts);
    late[i] = ts.tv_sec * 1000000000LL + ts.tv_nsec - at;
  }
  qsort(late, n, sizeof(int64_t), cmp);
  printf("timerfd every %ld us, %d wake-ups: late by p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f us\n",
         period_us, n, late[n / 2] / 1e3, late[n * 9 / 10] / 1e3, late[n * 99 / 100] / 1e3,
         late[n * 999 / 1000] / 1e3, late[n - 1] / 1e3);
  return 0;
}
