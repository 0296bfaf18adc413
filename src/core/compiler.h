// SPDX-License-Identifier: MIT
/*
 * Compiler helpers shared by every area: branch hints, sanitizer detection
 * and the unreachable marker.
 */
#ifndef KNIT_CORE_COMPILER_H
#define KNIT_CORE_COMPILER_H

#define knit_likely(x) __builtin_expect(!!(x), 1)
#define knit_unlikely(x) __builtin_expect(!!(x), 0)
#define KNIT_UNREACHABLE() __builtin_unreachable()
#define KNIT_NOINLINE __attribute__((noinline))
#define KNIT_NORETURN _Noreturn
#define KNIT_TLS _Thread_local __attribute__((tls_model("initial-exec")))

#if defined(__SANITIZE_ADDRESS__)
#define KNIT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KNIT_ASAN 1
#endif
#endif

/* A function ASan must not instrument (it reads memory that may carry
 * stale poison on purpose). */
#ifdef KNIT_ASAN
#define KNIT_NO_ASAN __attribute__((no_sanitize_address))
#else
#define KNIT_NO_ASAN
#endif

#if defined(__SANITIZE_THREAD__)
#define KNIT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KNIT_TSAN 1
#endif
#endif

#endif
