/* SPDX-License-Identifier: MIT */
/* knit/patterns/shutdown.h - (being written) */
#ifndef KNIT_PATTERNS_SHUTDOWN_H
#define KNIT_PATTERNS_SHUTDOWN_H

#include "knit/common.h"

#endif
