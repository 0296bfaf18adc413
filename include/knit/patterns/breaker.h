/* SPDX-License-Identifier: MIT */
/* knit/patterns/breaker.h - (being written) */
#ifndef KNIT_PATTERNS_BREAKER_H
#define KNIT_PATTERNS_BREAKER_H

#include "knit/common.h"

#endif
