// liblz4's block and frame APIs (the journal uses LZ4 frames with block and content checksums).
#include <lz4.h>
#include <lz4frame.h>
