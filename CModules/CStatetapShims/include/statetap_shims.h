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

#include "statetap_bpf_shared.h"

#endif
