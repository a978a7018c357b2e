/* main.c — cairn-nodectl (being written). */
#include <stdio.h>

int main(void)
{
	fputs("cairn-nodectl: not implemented yet\n", stderr);
	return 1;
}
