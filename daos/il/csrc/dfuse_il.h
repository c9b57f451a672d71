/* The ioctl dfuse answers for the interception library (daos/il/il.go holds
 * the same contract in Go; TestHeaderMatches checks the two agree). */
#ifndef GODAOS_DFUSE_IL_H
#define GODAOS_DFUSE_IL_H

#include <stdint.h>
#include <sys/ioctl.h>

#define DFUSE_IL_MAGIC 0x4c494447u /* "GDIL" */
#define DFUSE_IL_VERSION 1u

/* All fields little-endian (x86-64, aarch64: native). */
struct dfuse_il_info {
	uint32_t magic;
	uint32_t version;
	uint8_t pool[16];
	uint8_t cont[16];
	uint64_t oid_hi;
	uint64_t oid_lo;
	uint64_t chunk_size;
};

#define DFUSE_IOCTL_IL_INFO _IOR('D', 0x01, struct dfuse_il_info)

#endif
