// libnghttp2: only its HPACK inflater (HTTP/2 header blocks the tap reads from decrypted TLS).
#include <nghttp2/nghttp2.h>
