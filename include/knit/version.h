/* SPDX-License-Identifier: MIT */
/* knit/version.h - generated from CMakeLists.txt's project(VERSION). */
#ifndef KNIT_VERSION_H
#define KNIT_VERSION_H

#define KNIT_VERSION_MAJOR 0
#define KNIT_VERSION_MINOR 1
#define KNIT_VERSION_PATCH 0
#define KNIT_VERSION_STRING "0.1.0"

#endif
