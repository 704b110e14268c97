// SPDX-License-Identifier: GPL-2.0
/*
 * steer.bpf.c: statetap's XDP program. Frames of interest (configurable TCP/UDP ports, GTP-U, IP fragments, or
 * everything) go to the AF_XDP socket bound to the rx queue they arrived on; everything else (ARP, ND, routing,
 * management) goes to the kernel stack. Per-CPU counters record every decision.
 *
 * Built by BPFCompilerPlugin into steer.bpf.o, a resource of the XDPPrograms target.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
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

/* Load-time configuration (see struct statetap_steer_config). Defaults: HTTP, TLS, QUIC, GTP-U, fragments. */
const volatile struct statetap_steer_config config = {
    .steer_all = 0,
    .steer_gtpu = 1,
    .steer_fragments = 1,
    .tcp_ports = {80, 8080, 443},
    .udp_ports = {443},
};

#define VLAN_MAX_DEPTH 4   /* tags walked before giving up (QinQ and a little more) */
#define IPV6_EXT_MAX 4     /* IPv6 extension headers walked before giving up */
#define GTPU_PORT 2152

struct vlan_tag {
    __be16 tci;
    __be16 proto;
};

static __always_inline void count(__u32 index)
{
    __u64 *value = bpf_map_lookup_elem(&xdp_counters, &index);

    if (value)
        *value += 1; /* per-CPU slot: no other writer */
}

static __always_inline int port_listed(const volatile unsigned short *ports, __u16 port)
{
#pragma unroll
    for (int i = 0; i < STATETAP_MAX_PORTS; i++)
        if (ports[i] != 0 && ports[i] == port)
            return 1;
    return 0;
}

enum verdict { NOT_OF_INTEREST = 0, OF_INTEREST = 1, MALFORMED = 2 };

/* TCP or UDP at `l4`: of interest when either port is configured (or UDP 2152 carries GTP-U v1). */
static __always_inline enum verdict transport(void *l4, void *data_end, __u8 proto)
{
    if (proto == IPPROTO_TCP) {
        struct tcphdr *tcp = l4;
        if ((void *)(tcp + 1) > data_end)
            return MALFORMED;
        return port_listed(config.tcp_ports, bpf_ntohs(tcp->source)) ||
               port_listed(config.tcp_ports, bpf_ntohs(tcp->dest)) ? OF_INTEREST : NOT_OF_INTEREST;
    }
    if (proto == IPPROTO_UDP) {
        struct udphdr *udp = l4;
        if ((void *)(udp + 1) > data_end)
            return MALFORMED;
        __u16 sport = bpf_ntohs(udp->source), dport = bpf_ntohs(udp->dest);
        if (config.steer_gtpu && (sport == GTPU_PORT || dport == GTPU_PORT)) {
            __u8 *gtp = (void *)(udp + 1);
            if ((void *)(gtp + 8) > data_end)
                return MALFORMED;
            /* GTP-U v1: version 1 in the top three bits, protocol type GTP (not GTP'). */
            if ((gtp[0] >> 5) == 1 && (gtp[0] & 0x10))
                return OF_INTEREST;
        }
        return port_listed(config.udp_ports, sport) || port_listed(config.udp_ports, dport) ? OF_INTEREST
                                                                                             : NOT_OF_INTEREST;
    }
    return NOT_OF_INTEREST;
}

static __always_inline enum verdict classify(void *data, void *data_end)
{
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return MALFORMED;
    if (config.steer_all)
        return OF_INTEREST;

    void *cursor = eth + 1;
    __be16 proto = eth->h_proto;
#pragma unroll
    for (int i = 0; i < VLAN_MAX_DEPTH; i++) {
        if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD) && proto != bpf_htons(0x9100))
            break;
        struct vlan_tag *tag = cursor;
        if ((void *)(tag + 1) > data_end)
            return MALFORMED;
        proto = tag->proto;
        cursor = tag + 1;
    }

    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = cursor;
        if ((void *)(ip + 1) > data_end)
            return MALFORMED;
        if (ip->ihl < 5)
            return MALFORMED;
        /* More fragments or a non-zero offset: the ports may not be here; the pipeline reassembles. */
        if (ip->frag_off & bpf_htons(0x3fff))
            return config.steer_fragments ? OF_INTEREST : NOT_OF_INTEREST;
        return transport(cursor + ip->ihl * 4, data_end, ip->protocol);
    }
    if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = cursor;
        if ((void *)(ip6 + 1) > data_end)
            return MALFORMED;
        __u8 next = ip6->nexthdr;
        cursor = ip6 + 1;
#pragma unroll
        for (int i = 0; i < IPV6_EXT_MAX; i++) {
            if (next == IPPROTO_FRAGMENT)
                return config.steer_fragments ? OF_INTEREST : NOT_OF_INTEREST;
            if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
                break;
            __u8 *ext = cursor;
            if ((void *)(ext + 2) > data_end)
                return MALFORMED;
            next = ext[0];
            cursor = ext + (ext[1] + 1) * 8;
        }
        return transport(cursor, data_end, next);
    }
    return NOT_OF_INTEREST; /* ARP, LLDP, MPLS, PPPoE...: the kernel's (or --steer all) */
}

SEC("xdp")
int statetap_steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;

    enum verdict v = classify(data, data_end);
    if (v == MALFORMED) {
        count(STATETAP_CTR_MALFORMED);
        return XDP_PASS;
    }
    if (v == NOT_OF_INTEREST) {
        count(STATETAP_CTR_PASSED);
        return XDP_PASS;
    }

    /* Map keys must point to the stack, not into ctx: copy the queue id first. */
    __u32 queue = ctx->rx_queue_index;
    if (bpf_map_lookup_elem(&xsks_map, &queue)) {
        /* Falls back to XDP_PASS if the slot was cleared in the meantime. */
        long action = bpf_redirect_map(&xsks_map, queue, XDP_PASS);
        if (action == XDP_REDIRECT) {
            count(STATETAP_CTR_STEERED);
            return XDP_REDIRECT;
        }
    }
    count(STATETAP_CTR_NO_SOCKET);
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
