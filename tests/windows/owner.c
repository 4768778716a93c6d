/* Test scaffolding for wine, never shipped: stands in for the PowerShell
 * process whose $PID install.ps1 passes to the helper as --owner. It
 * prints its Windows process id and lives until it is killed. */
#include <windows.h>
#include <stdio.h>

int main(void)
{
    printf("%lu\n", (unsigned long)GetCurrentProcessId());
    fflush(stdout);
    Sleep(INFINITE);
    return 0;
}
