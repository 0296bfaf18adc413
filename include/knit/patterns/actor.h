/* SPDX-License-Identifier: MIT */
/* knit/patterns/actor.h - (being written) */
#ifndef KNIT_PATTERNS_ACTOR_H
#define KNIT_PATTERNS_ACTOR_H

#include "knit/common.h"

#endif
