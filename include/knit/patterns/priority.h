/* SPDX-License-Identifier: MIT */
/* knit/patterns/priority.h - (being written) */
#ifndef KNIT_PATTERNS_PRIORITY_H
#define KNIT_PATTERNS_PRIORITY_H

#include "knit/common.h"

#endif
