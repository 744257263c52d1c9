/* Wine 8 (Debian 12) has no bcryptprimitives.dll, whose ProcessPrng the Rust standard library
 * imports on Windows; without it no Rust program starts under that Wine. This stand-in, built
 * with mingw-w64 next to the test executable, forwards to RtlGenRandom (advapi32's
 * SystemFunction036), which Wine has. Test machinery only: nothing ships it. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
