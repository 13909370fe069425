/* Time since boot and the OS architecture. */
#include "agent.h"

u64 boot_microseconds(void)
{
    LARGE_INTEGER counter;
    LARGE_INTEGER frequency;
    u64 c;
    u64 f;

    /* QueryPerformanceCounter counts from boot and never fails on Vista and
     * later; the frequency is fixed for the boot. */
    if (!QueryPerformanceFrequency(&frequency) || frequency.QuadPart <= 0 || !QueryPerformanceCounter(&counter)) {
        return 0;
    }
    c = (u64)counter.QuadPart;
    f = (u64)frequency.QuadPart;
    /* Split so that c * 1e6 cannot overflow. */
    return (c / f) * 1000000ULL + ((c % f) * 1000000ULL) / f;
}

const char *os_arch(void)
{
    SYSTEM_INFO info;

    /* GetNativeSystemInfo reports the OS, also to a 32-bit process on x64. */
    GetNativeSystemInfo(&info);
    switch (info.wProcessorArchitecture) {
    case PROCESSOR_ARCHITECTURE_INTEL:
        return "x86";
    case PROCESSOR_ARCHITECTURE_AMD64:
        return "x64";
    default:
        return NULL;
    }
}
