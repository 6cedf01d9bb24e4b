/* Callgrind client requests around the counted calls (compiled once into the optbench cache, loaded with ctypes).
   Outside Valgrind every request is a no-op, so the worker runs unchanged without it. */
#include <cpuid.h>
#include <string.h>
#include <valgrind/callgrind.h>

/* Zero the counters and collect from here: only the calls between start and stop are counted. */
void ob_start(void) {
    CALLGRIND_ZERO_STATS;
    CALLGRIND_START_INSTRUMENTATION;
    CALLGRIND_TOGGLE_COLLECT;
}

/* Stop collecting and write a dump whose description names the job. */
void ob_stop(const char *name) {
    CALLGRIND_TOGGLE_COLLECT;
    CALLGRIND_DUMP_STATS_AT(name);
}

int ob_running(void) { return RUNNING_ON_VALGRIND; }

/* The CPU the program sees (under Valgrind: the one Valgrind presents, not the host's): brand string and the
   vector extensions libraries dispatch on. */
void ob_cpu(char *brand, int *avx2, int *avx512f) {
    unsigned a, b, c, d;
    memset(brand, 0, 49);
    for (unsigned i = 0; i < 3; i++) {
        __cpuid(0x80000002 + i, a, b, c, d);
        memcpy(brand + 16 * i, &a, 4);
        memcpy(brand + 16 * i + 4, &b, 4);
        memcpy(brand + 16 * i + 8, &c, 4);
        memcpy(brand + 16 * i + 12, &d, 4);
    }
    __cpuid_count(7, 0, a, b, c, d);
    *avx2 = (b >> 5) & 1;
    *avx512f = (b >> 16) & 1;
}
