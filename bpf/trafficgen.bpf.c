// SPDX-License-Identifier: GPL-2.0
/*
 * trafficgen.bpf.c: the traffic generator's XDP program. Run with BPF_PROG_RUN and BPF_F_TEST_XDP_LIVE_FRAMES,
 * the kernel builds a real xdp_frame from the test input for every repetition and this program redirects it out
 * of `config.ifindex` (a veth: the frame arrives on its peer, whose XDP program must run in native mode).
 *
 * Built by BPFCompilerPlugin into trafficgen.bpf.o, a resource of the XDPPrograms target.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "statetap_common.h"

const volatile struct statetap_trafficgen_config config = {
    .ifindex = 0,
};

SEC("xdp")
int statetap_trafficgen(struct xdp_md *ctx)
{
    return bpf_redirect(config.ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
