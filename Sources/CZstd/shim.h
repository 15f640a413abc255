// The system libzstd, for compressing request and response bodies against a preset dictionary
// (PayloadCodec): no package of the Swift server ecosystem wraps zstd. The experimental
// part of its API (a digested dictionary's table sizes, frames without the magic number)
// is what keeps a small body small and its compression cheap; Debian's libzstd exports it.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
