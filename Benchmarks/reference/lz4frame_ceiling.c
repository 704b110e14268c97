// The ceiling of the journal's compression on this machine, for issue 5's "≥ 1 M records/s with LZ4 on one core":
// how fast journal records can be batched and compressed into LZ4 frames the way the journal writes them (liblz4's
// frame API, 256 KB linked blocks, block checksums and the content checksum, content size in the header), with no
// record encoding at all. A journal that builds its records from events can only be slower than this.
//
//   lz4frame_ceiling FILE [BATCH [ACCELERATION]]
//
// FILE holds journal records back to back, as a segment's frames hold them (`lz4 -dc seg-0000000001.stj > FILE`;
// record := u32 body length | u8 type | u8 version | body). BATCH records (4096) are copied into one buffer, the
// buffer is compressed into one frame and the frame is written to /dev/null; the file is read into memory first
// and walked once. Prints "records N bytes B seconds S records_per_s R compress_only_s C ratio X".
#define _GNU_SOURCE
#include <fcntl.h>
#include <lz4frame.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of this (single-threaded) process: the rate per CPU-second does not count time the machine's other
   tenants took from it. */
static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s FILE [BATCH [ACCELERATION]]\n", argv[0]);
        return 2;
    }
    long batch = argc > 2 ? strtol(argv[2], NULL, 10) : 4096;
    long accel = argc > 3 ? strtol(argv[3], NULL, 10) : 1;
    if (batch < 1 || accel < 1 || accel > 64) {
        fprintf(stderr, "BATCH must be >= 1 and ACCELERATION 1...64\n");
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) { perror(argv[1]); return 1; }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size);
    for (size_t got = 0; got < size;) {
        ssize_t n = read(fd, data + got, size - got);
        if (n <= 0) { perror("read"); return 1; }
        got += (size_t)n;
    }
    close(fd);
    int out = open("/dev/null", O_WRONLY);

    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.blockSizeID = LZ4F_max256KB;
    prefs.frameInfo.blockMode = LZ4F_blockLinked;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    prefs.compressionLevel = (int)(1 - accel);

    size_t capacity = 8 << 20;
    uint8_t *raw = malloc(capacity);
    size_t frameCapacity = LZ4F_compressFrameBound(capacity, &prefs);
    uint8_t *frame = malloc(frameCapacity);
    unsigned long long records = 0, compressed = 0;
    double compressTime = 0;
    double start = now(), startCPU = cpu();
    size_t off = 0;
    while (off + 6 <= size) {
        size_t used = 0;
        long n = 0;
        while (n < batch && off + 6 <= size) {
            uint32_t body;
            memcpy(&body, data + off, 4);
            size_t len = 6 + (size_t)body;
            if (off + len > size) break;
            if (used + len > capacity) break;
            memcpy(raw + used, data + off, len);  // the one copy a journal of ready-made bytes makes
            used += len;
            off += len;
            n++;
        }
        if (n == 0) break;
        prefs.frameInfo.contentSize = used;
        double c0 = now();
        size_t r = LZ4F_compressFrame(frame, frameCapacity, raw, used, &prefs);
        compressTime += now() - c0;
        if (LZ4F_isError(r)) { fprintf(stderr, "LZ4F: %s\n", LZ4F_getErrorName(r)); return 1; }
        if (write(out, frame, r) != (ssize_t)r) { perror("write"); return 1; }
        records += (unsigned long long)n;
        compressed += r;
    }
    double seconds = now() - start, cpuSeconds = cpu() - startCPU;
    printf("records %llu bytes %zu seconds %.3f records_per_s %.0f compress_only_s %.3f ratio %.2f "
           "records_per_cpu_s %.0f\n", records, off, seconds, (double)records / seconds, compressTime,
           (double)off / (double)compressed, (double)records / cpuSeconds);
    return 0;
}
