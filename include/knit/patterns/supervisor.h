/* SPDX-License-Identifier: MIT */
/* knit/patterns/supervisor.h - (being written) */
#ifndef KNIT_PATTERNS_SUPERVISOR_H
#define KNIT_PATTERNS_SUPERVISOR_H

#include "knit/common.h"

#endif
