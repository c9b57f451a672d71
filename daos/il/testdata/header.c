/* Prints what dfuse_il.h says, for TestHeaderMatches. */
#include <stddef.h>
#include <stdio.h>

#include "dfuse_il.h"

int main(void)
{
	printf("size=%zu cmd=%#x magic=%#x version=%u pool=%zu cont=%zu hi=%zu lo=%zu chunk=%zu\n",
	       sizeof(struct dfuse_il_info), (unsigned)DFUSE_IOCTL_IL_INFO, DFUSE_IL_MAGIC, DFUSE_IL_VERSION,
	       offsetof(struct dfuse_il_info, pool), offsetof(struct dfuse_il_info, cont),
	       offsetof(struct dfuse_il_info, oid_hi), offsetof(struct dfuse_il_info, oid_lo),
	       offsetof(struct dfuse_il_info, chunk_size));
	return 0;
}
