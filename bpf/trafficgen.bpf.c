// SPDX-License-Identifier: GPL-2.0
/*
 * trafficgen.bpf.c: the traffic generator's XDP program. Run with BPF_PROG_RUN and BPF_F_TEST_XDP_LIVE_FRAMES,
 * the kernel builds a real xdp_frame from the test input for every repetition; this program redirects it out of
 * `config.ifindex` (a veth: the frame arrives on its peer, whose XDP program must run in native mode) until
 * `limit` frames were sent, and drops the rest.
 *
 * Pacing: with `config.interval_ns` set, a frame is sent only when its time slot has come (the others are dropped
 * at once), so the offered rate is smooth and exact instead of bursts separated by sleeps. A late sender catches
 * up by at most STATETAP_TRAFFICGEN_MAX_BURST frames.
 *
 * Built by BPFCompilerPlugin into trafficgen.bpf.o, a resource of the XDPPrograms target.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "statetap_common.h"

const volatile struct statetap_trafficgen_config config = {
    .ifindex = 0,
    .interval_ns = 0,
};

/* One entry: the generator's state, written by user space (limit) and by the program (sent, next_ns). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct statetap_trafficgen_state);
} trafficgen_state SEC(".maps");

SEC("xdp")
int statetap_trafficgen(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct statetap_trafficgen_state *s = bpf_map_lookup_elem(&trafficgen_state, &zero);

    if (!s || s->sent >= s->limit)
        return XDP_DROP;
    if (config.interval_ns) {
        __u64 now = bpf_ktime_get_ns();

        if (now < s->next_ns)
            return XDP_DROP;
        /* Behind by more than a burst (or the first frame): restart the schedule from now. */
        if (now - s->next_ns > (__u64)STATETAP_TRAFFICGEN_MAX_BURST * config.interval_ns)
            s->next_ns = now;
        s->next_ns += config.interval_ns;
    }
    s->sent += 1;
    return bpf_redirect(config.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
