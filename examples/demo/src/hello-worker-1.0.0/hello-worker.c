/* hello-worker: the demo stack's worker, built from its PKGBUILD by onramp.
 * --version prints its version; --ping answers like a health check;
 * --self-test is what the recipe's check() runs; anything else is echoed
 * back upper-cased, standing in for real inference work. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define VERSION "1.0.0"

static int self_test(void)
{
    char s[] = "abc";
    for (char *p = s; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return strcmp(s, "ABC") == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: hello-worker --version | --ping | --self-test | TEXT\n");
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("hello-worker " VERSION "\n");
        return 0;
    }
    if (strcmp(argv[1], "--ping") == 0) {
        printf("pong\n");
        return 0;
    }
    if (strcmp(argv[1], "--self-test") == 0) {
        int rc = self_test();
        printf("self-test %s\n", rc == 0 ? "passed" : "FAILED");
        return rc;
    }
    for (char *p = argv[1]; *p; p++)
        putchar(toupper((unsigned char)*p));
    putchar('\n');
    return 0;
}
