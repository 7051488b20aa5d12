/* main.c: herald's entry point; everything else is in src/cli/. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return hr_cli_main(argc, argv);
}
