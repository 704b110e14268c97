// The constants and configuration struct shared with the XDP programs in bpf/, for Swift (one definition).
#ifndef STATETAP_BPF_SHARED_H
#define STATETAP_BPF_SHARED_H
#include "../../../bpf/statetap_common.h"
#endif
