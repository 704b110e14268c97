/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * statetap_common.h: constants shared by the XDP programs in bpf/ and the Swift side that loads them.
 *
 * Plain C only (no kernel or libbpf types), so it compiles under `clang -target bpf` and imports into Swift
 * through a C module. Values are ABI between the kernel object and user space: they are stable and are never
 * renumbered or reused. Add new entries just before the *_MAX sentinel.
 */
#ifndef STATETAP_COMMON_H
#define STATETAP_COMMON_H

/*
 * Indices into the per-CPU counters map (`STATETAP_COUNTERS_MAP_NAME`). Each slot is a 64-bit counter per CPU;
 * user space sums over CPUs.
 */
enum statetap_xdp_counter {
    /* Frame redirected to the AF_XDP socket bound to its rx queue (bpf_redirect_map succeeded). */
    STATETAP_CTR_STEERED = 0,
    /* Well-formed frame handed to the kernel stack (XDP_PASS): no socket on its queue, or not selected. */
    STATETAP_CTR_PASSED = 1,
    /* Frame too short for a header it announces; passed to the kernel stack untouched. */
    STATETAP_CTR_MALFORMED = 2,
    /* Frame of interest, but no AF_XDP socket is bound to its rx queue: passed to the kernel stack. */
    STATETAP_CTR_NO_SOCKET = 3,
    /* Number of counters (sentinel, sizes the map). Not a counter itself; moves when counters are added. */
    STATETAP_CTR_MAX
};

/* Ports the steering configuration holds per transport (unused slots are 0). */
#define STATETAP_MAX_PORTS 8

/*
 * Load-time configuration of steer.bpf.c: the program's `const volatile struct statetap_steer_config config`,
 * alone in .rodata, written by user space before the object is loaded (the verifier then prunes what it
 * disables). Ports are in host order.
 */
struct statetap_steer_config {
    unsigned char steer_all;  /* 1: every frame is of interest (ARP and the like included) */
    unsigned char steer_gtpu; /* 1: UDP 2152 carrying a GTP-U v1 header is of interest */
    unsigned char steer_fragments; /* 1: IP fragments are of interest (their ports are in the first only) */
    unsigned char reserved;
    unsigned short tcp_ports[STATETAP_MAX_PORTS];
    unsigned short udp_ports[STATETAP_MAX_PORTS];
};

/* Capacity of the XSKMAP: one slot per rx queue, indexed by the queue id. */
#define STATETAP_XSKS_MAX_ENTRIES 64

/* Load-time configuration of trafficgen.bpf.c (alone in its .rodata). */
struct statetap_trafficgen_config {
    unsigned long long interval_ns; /* nanoseconds between frames (0: as fast as possible) */
    unsigned int ifindex;           /* interface frames are sent out of */
    unsigned int reserved;
};

/* The generator's state (the single entry of STATETAP_TRAFFICGEN_STATE_MAP_NAME). */
struct statetap_trafficgen_state {
    unsigned long long limit;   /* send until `sent` reaches this (user space raises it) */
    unsigned long long sent;    /* frames redirected so far */
    unsigned long long next_ns; /* time slot of the next frame when paced */
};

/* Frames a late paced generator may send back to back to catch up. */
#define STATETAP_TRAFFICGEN_MAX_BURST 32

/* Names of the objects inside steer.bpf.o, as user space looks them up with libbpf. */
#define STATETAP_STEER_PROG_NAME "statetap_steer" /* the SEC("xdp") program */
#define STATETAP_XSKS_MAP_NAME "xsks_map"         /* BPF_MAP_TYPE_XSKMAP, rx queue id -> AF_XDP socket */
#define STATETAP_COUNTERS_MAP_NAME "xdp_counters" /* BPF_MAP_TYPE_PERCPU_ARRAY, enum statetap_xdp_counter -> u64 */

#define STATETAP_TRAFFICGEN_PROG_NAME "statetap_trafficgen" /* in trafficgen.bpf.o */
#define STATETAP_TRAFFICGEN_STATE_MAP_NAME "trafficgen_state"

#endif /* STATETAP_COMMON_H */
