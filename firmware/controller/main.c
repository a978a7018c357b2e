/* main.c — cairn-controller (being written). */
#include <stdio.h>

int main(void)
{
	fputs("cairn-controller: not implemented yet\n", stderr);
	return 1;
}
