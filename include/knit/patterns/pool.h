/* SPDX-License-Identifier: MIT */
/* knit/patterns/pool.h - (being written) */
#ifndef KNIT_PATTERNS_POOL_H
#define KNIT_PATTERNS_POOL_H

#include "knit/common.h"

#endif
