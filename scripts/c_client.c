/* A minimal closed-loop epoll echo client in C: the yardstick for loadgen's own cost.
 * Usage: c_client PORT CONNS SECONDS [MSG_SIZE=64]
 * Opens CONNS connections to 127.0.0.1:PORT, keeps one message in flight on each, counts
 * round trips for SECONDS, prints "<msg/s> msg/s, <us> us/msg client cpu". No payload
 * check, no histogram: the least a client can do per message. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: c_client PORT CONNS SECONDS [MSG_SIZE]\n"); return 2; }
    int port = atoi(argv[1]), n = atoi(argv[2]);
    double dur = atof(argv[3]);
    int size = argc > 4 ? atoi(argv[4]) : 64;
    int ep = epoll_create1(0);
    static char buf[65536], msg[65536];
    memset(msg, 'x', sizeof msg);
    int *got = calloc(n + 1024, sizeof(int));
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(0x7f000001);
        if (connect(fd, (void *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        send(fd, msg, size, 0);
    }
    struct epoll_event evs[1024];
    long msgs = 0;
    double t0 = now(), c0 = cpu();
    while (now() - t0 < dur) {
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            ssize_t m;
            while ((m = read(fd, buf, sizeof buf)) > 0) {
                got[fd] += m;
                while (got[fd] >= size) { got[fd] -= size; msgs++; send(fd, msg, size, 0); }
            }
        }
    }
    double el = now() - t0, c = cpu() - c0;
    printf("%.0f msg/s, %.2f us/msg client cpu\n", msgs / el, c * 1e6 / msgs);
    return 0;
}
