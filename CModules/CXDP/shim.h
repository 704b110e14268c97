// libxdp's AF_XDP socket API (xsk.h: its static-inline ring helpers import and inline into Swift) and libbpf.
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>
#include <linux/if_link.h>   // XDP_FLAGS_*, XDP_ATTACHED_*
