/* SPDX-License-Identifier: MIT */
/* knit/patterns/map.h - (being written) */
#ifndef KNIT_PATTERNS_MAP_H
#define KNIT_PATTERNS_MAP_H

#include "knit/common.h"

#endif
