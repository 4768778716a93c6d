/* Test scaffolding for wine, never shipped: Debian's wine 8.0 has no
 * ProcessPrng, which current Rust std imports from bcryptprimitives.dll.
 * This stand-in answers it with BCryptGenRandom, the system's generator.
 * Built by tests/windows/wine-setup.sh with mingw-w64. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
