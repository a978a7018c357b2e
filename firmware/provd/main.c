/* main.c — cairn-provd (being written). */
#include <stdio.h>

int main(void)
{
	fputs("cairn-provd: not implemented yet\n", stderr);
	return 1;
}
