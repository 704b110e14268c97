// SPDX-License-Identifier: BSD-2-Clause
/*
 * xsk_rx.c: the minimal AF_XDP receiver statetap's live capture is measured against.
 *
 * Same kernel side as `statetap capture`: it loads statetap's steer.bpf.o (default configuration), attaches it
 * with a bpf_link in native mode, binds one copy-mode socket with needs_wakeup to queue 0 and registers it in the
 * program's XSKMAP. Same sizes as statetap's defaults: 2048-byte frames, 16384 UMEM frames, rx and fill rings of
 * 8192. Its user space does the least a receiver can: poll(), peek a batch of 64, count packets and bytes, touch
 * the first byte of each frame, give the frames straight back to the fill ring. No decoding, no pipeline.
 *
 * Stops on SIGINT/SIGTERM and prints one JSON line: packets, bytes, CPU seconds, XDP_STATISTICS.
 *
 *   cc -O2 -o xsk_rx xsk_rx.c $(pkg-config --cflags --libs libxdp libbpf)
 *   xsk_rx IFNAME /path/to/steer.bpf.o
 */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#define FRAME_SIZE 2048
#define FRAMES 16384
#define RING 8192
#define BATCH 64

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what, int err)
{
    fprintf(stderr, "xsk_rx: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s IFNAME steer.bpf.o\n", argv[0]);
        return 64;
    }
    const char *ifname = argv[1];
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex)
        die(ifname, errno);
    libbpf_set_print(NULL);

    struct bpf_object *obj = bpf_object__open_file(argv[2], NULL);
    if (!obj)
        die("open the BPF object", errno);
    int err = bpf_object__load(obj);
    if (err)
        die("load the BPF object", err);
    int prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "statetap_steer"));
    int xsks_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "xsks_map"));

    void *area = mmap(NULL, (size_t)FRAME_SIZE * FRAMES, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (area == MAP_FAILED)
        die("mmap the UMEM", errno);
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp, rx;
    struct xsk_umem *umem;
    struct xsk_umem_config ucfg = {.fill_size = RING, .comp_size = 64, .frame_size = FRAME_SIZE};
    err = xsk_umem__create(&umem, area, (__u64)FRAME_SIZE * FRAMES, &fill, &comp, &ucfg);
    if (err)
        die("create the UMEM", err);
    struct xsk_socket *xsk;
    struct xsk_socket_config scfg = {
        .rx_size = RING,
        .tx_size = 0,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
    };
    err = xsk_socket__create(&xsk, ifname, 0, umem, &rx, NULL, &scfg);
    if (err)
        die("create the AF_XDP socket", err);
    int fd = xsk_socket__fd(xsk);
    __u32 key = 0;
    err = bpf_map_update_elem(xsks_fd, &key, &fd, 0);
    if (err)
        die("register the socket", err);
    LIBBPF_OPTS(bpf_link_create_opts, lopts, .flags = XDP_FLAGS_DRV_MODE);
    int link = bpf_link_create(prog_fd, ifindex, BPF_XDP, &lopts);
    if (link < 0)
        die("attach the program", link);

    /* Every frame starts in the fill ring or waiting for it. */
    __u64 free_frames[FRAMES];
    unsigned nfree = 0;
    for (unsigned i = 0; i < FRAMES; i++)
        free_frames[nfree++] = (__u64)i * FRAME_SIZE;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "xsk_rx: capturing on %s\n", ifname);

    unsigned long long packets = 0, bytes = 0, touched = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    for (;;) {
        /* Refill from the free frames. */
        __u32 idx;
        unsigned n = xsk_prod_nb_free(&fill, nfree);
        if (n > nfree)
            n = nfree;
        if (n && xsk_ring_prod__reserve(&fill, n, &idx) == n) {
            for (unsigned i = 0; i < n; i++)
                *xsk_ring_prod__fill_addr(&fill, idx + i) = free_frames[--nfree];
            xsk_ring_prod__submit(&fill, n);
            if (xsk_ring_prod__needs_wakeup(&fill))
                recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
        }
        unsigned got = xsk_ring_cons__peek(&rx, BATCH, &idx);
        if (!got) {
            if (stop)
                break;
            poll(&pfd, 1, 50);
            continue;
        }
        for (unsigned i = 0; i < got; i++) {
            const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx + i);
            touched += *(unsigned char *)xsk_umem__get_data(area, d->addr);
            bytes += d->len;
            free_frames[nfree++] = xsk_umem__extract_addr(d->addr);
        }
        xsk_ring_cons__release(&rx, got);
        packets += got;
    }

    struct xdp_statistics st = {0};
    socklen_t len = sizeof(st);
    getsockopt(fd, SOL_XDP, XDP_STATISTICS, &st, &len);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("{\"packets\":%llu,\"bytes\":%llu,\"cpu_s\":%.3f,\"kernel_rx_dropped\":%llu,\"kernel_rx_ring_full\":%llu,"
           "\"kernel_fill_ring_empty\":%llu,\"checksum\":%llu}\n",
           packets, bytes, cpu, (unsigned long long)st.rx_dropped, (unsigned long long)st.rx_ring_full,
           (unsigned long long)st.rx_fill_ring_empty_descs, touched);
    close(link);
    xsk_socket__delete(xsk);
    xsk_umem__delete(umem);
    bpf_object__close(obj);
    return 0;
}
