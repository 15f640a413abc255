// glibc's allocator tuning (MallocArenas): <malloc.h>, which Swift's Glibc module leaves out.
#if defined(__linux__)
#include <malloc.h>
#endif
