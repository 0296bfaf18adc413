/* SPDX-License-Identifier: MIT */
/* knit.h - the whole public API of knit, an async runtime for C. */
#ifndef KNIT_H
#define KNIT_H

#include "knit/common.h"
#include "knit/version.h"
#include "knit/rt.h"
#include "knit/task.h"
#include "knit/chan.h"
#include "knit/select.h"
#include "knit/scope.h"
#include "knit/group.h"
#include "knit/sync.h"
#include "knit/time.h"
#include "knit/net.h"
#include "knit/blocking.h"
#include "knit/file.h"
#include "knit/signal.h"
#include "knit/patterns.h"

#endif
