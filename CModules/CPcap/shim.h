// libpcap's reader (pcap and pcapng files). Only the public API is used.
// pcap/bpf.h's classic-BPF struct bpf_insn / struct bpf_program clash with linux/bpf.h's eBPF struct bpf_insn
// and libbpf's opaque struct bpf_program (module CXDP). Struct tags are not part of C linkage: no symbol changes.
#define bpf_insn pcap_bpf_insn
#define bpf_program pcap_bpf_program
#include <pcap/pcap.h>
#undef bpf_program
#undef bpf_insn
