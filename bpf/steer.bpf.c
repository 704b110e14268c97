// SPDX-License-Identifier: GPL-2.0
/*
 * steer.bpf.c: statetap's XDP program. Redirects each frame to the AF_XDP socket bound to the rx queue it
 * arrived on, if there is one; everything else goes to the kernel stack. Per-CPU counters record what happened.
 *
 * Built by BPFCompilerPlugin into steer.bpf.o, a resource of the XDPPrograms target.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

#include "statetap_common.h"

/* rx queue id -> AF_XDP socket. User space inserts a socket per queue it serves. */
struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, STATETAP_XSKS_MAX_ENTRIES);
    __type(key, __u32);
    __type(value, __u32);
} xsks_map SEC(".maps");

/* enum statetap_xdp_counter -> frames counted, one slot per CPU (no atomics needed on the fast path). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, STATETAP_CTR_MAX);
    __type(key, __u32);
    __type(value, __u64);
} xdp_counters SEC(".maps");

/*
 * Load-time configuration (.rodata, set by user space before loading; the verifier then prunes dead branches).
 * steer_all: 1 = steer every well-formed frame whose queue has a socket; 0 = steer nothing (pass everything).
 */
const volatile __u8 steer_all = 1;

static __always_inline void count(__u32 index)
{
    __u64 *value = bpf_map_lookup_elem(&xdp_counters, &index);

    if (value)
        *value += 1; /* per-CPU slot: no other writer */
}

SEC("xdp")
int statetap_steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;

    /* Bounds check the verifier requires before any header access; also our "malformed" test. */
    if ((void *)(eth + 1) > data_end) {
        count(STATETAP_CTR_MALFORMED);
        return XDP_PASS;
    }

    /* Map keys must point to the stack, not into ctx: copy the queue id first. */
    __u32 queue = ctx->rx_queue_index;

    if (steer_all && bpf_map_lookup_elem(&xsks_map, &queue)) {
        /* Falls back to XDP_PASS if the slot was cleared in the meantime. */
        long action = bpf_redirect_map(&xsks_map, queue, XDP_PASS);

        if (action == XDP_REDIRECT) {
            count(STATETAP_CTR_STEERED);
            return XDP_REDIRECT;
        }
    }

    count(STATETAP_CTR_PASSED);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
