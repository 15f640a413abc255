// The system zlib, for what CompressNIO does not expose: preset dictionaries (PayloadCodec).
#include <zlib.h>
