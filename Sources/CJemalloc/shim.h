// jemalloc, the allocator llmtap is linked with (Sources/LLMTapServer/Allocator.swift): linking it
// puts its malloc before glibc's for the whole process; this header gives Swift its mallctl.
#include <jemalloc/jemalloc.h>
