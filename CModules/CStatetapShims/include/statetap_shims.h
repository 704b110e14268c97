// Small C shims for what Swift's importer cannot take. Every symbol is prefixed `statetap_`; each says why it
// exists.
#ifndef STATETAP_SHIMS_H
#define STATETAP_SHIMS_H

// sched_setaffinity and the CPU_SET macros are behind _GNU_SOURCE and macros do not import: pin the calling
// thread to one CPU. Returns 0 or an errno value.
int statetap_pin_current_thread(int cpu);

// pthread_setname_np is behind _GNU_SOURCE: name the calling thread (truncated to 15 bytes). Returns 0 or errno.
int statetap_set_current_thread_name(const char *name);

// Number of CPUs this process may run on (sched_getaffinity + CPU_COUNT, a macro).
int statetap_allowed_cpu_count(void);

// The traffic generator's AF_PACKET engine. sockaddr_ll and PACKET_QDISC_BYPASS live in <linux/if_packet.h>, which
// Swift's Glibc module does not import, and sendmmsg/struct mmsghdr are behind _GNU_SOURCE.
// Opens an AF_PACKET raw socket bound to `ifindex` that receives nothing (protocol 0) and, with `qdisc_bypass`,
// hands frames straight to the driver (PACKET_QDISC_BYPASS). Returns the fd, or -errno.
int statetap_packet_socket_open(int ifindex, int qdisc_bypass);
// Sends `count` (1...256) frames, frame i = (bases[i], lengths[i]), with one sendmmsg. Returns how many the kernel
// took (the first refused one is the next to send), or -errno when it took none.
int statetap_packet_send_batch(int fd, void *const *bases, const unsigned int *lengths, unsigned int count);
// The CPU the calling thread runs on (sched_getcpu is behind _GNU_SOURCE); -1 when unknown.
int statetap_current_cpu(void);

#include "statetap_bpf_shared.h"

#endif
