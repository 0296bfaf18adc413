/* SPDX-License-Identifier: MIT */
/* knit/patterns/pipeline.h - (being written) */
#ifndef KNIT_PATTERNS_PIPELINE_H
#define KNIT_PATTERNS_PIPELINE_H

#include "knit/common.h"

#endif
