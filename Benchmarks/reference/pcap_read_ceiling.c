// The ceiling of reading a classic pcap file on this machine, for compare-ndpi.sh: how fast packets can come off the
// file with nothing done to them, so a target "N times ndpiReader" can be checked against what the I/O allows.
//
//   pcap_read_ceiling walk FILE   1 MB pread chunks, walk the 16-byte record headers, touch one byte per packet
//   pcap_read_ceiling copy FILE   the same, and copy each packet into a slot of a 16,384 x 2 KB pool (the one copy
//                                 statetap's pipeline makes into its frames)
//
// Prints "packets N seconds S" on stdout. Little-endian classic pcap only (what `statetap generate` writes).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint8_t pool[16384][2048];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "walk") != 0 && strcmp(argv[1], "copy") != 0)) {
        fprintf(stderr, "usage: %s walk|copy FILE\n", argv[0]);
        return 2;
    }
    int copy = strcmp(argv[1], "copy") == 0;
    int fd = open(argv[2], O_RDONLY);
    if (fd < 0) { perror(argv[2]); return 1; }
    size_t cap = (4u << 20) + 65536;
    uint8_t *buf = malloc(cap);
    uint32_t magic = 0;
    if (!buf || pread(fd, &magic, 4, 0) != 4 || (magic != 0xa1b2c3d4u && magic != 0xa1b23c4du)) {
        fprintf(stderr, "%s: not a little-endian classic pcap\n", argv[2]);
        return 1;
    }
    double t0 = now();
    off_t offset = 24;
    size_t have = 0, pos = 0;
    uint64_t packets = 0, sum = 0;
    for (;;) {
        uint32_t caplen = 0;
        if (have - pos >= 16) memcpy(&caplen, buf + pos + 8, 4);
        if (have - pos < 16 || have - pos < 16 + (size_t)caplen) {
            if (caplen > 65536) { fprintf(stderr, "record of %u bytes\n", caplen); return 1; }
            memmove(buf, buf + pos, have - pos);
            have -= pos;
            pos = 0;
            ssize_t n = pread(fd, buf + have, 1u << 20, offset);
            if (n < 0) { perror("pread"); return 1; }
            if (n == 0) break;
            have += (size_t)n;
            offset += n;
            continue;
        }
        pos += 16;
        packets++;
        if (copy && caplen <= 2048) {
            uint8_t *slot = pool[packets & 16383];
            memcpy(slot, buf + pos, caplen);
            sum += slot[caplen / 2];
        } else {
            sum += buf[pos];
        }
        pos += caplen;
    }
    double t1 = now();
    printf("packets %llu seconds %.6f checksum %llu\n", (unsigned long long)packets, t1 - t0, (unsigned long long)(sum & 0xff));
    return 0;
}
