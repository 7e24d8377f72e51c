/*
 * clock — the few time helpers every module needs, in one place: wall-clock
 * milliseconds (timestamps people read, stored in job records), monotonic
 * time (deadlines and durations, immune to clock steps), and the one
 * timestamp format patchbay prints (RFC 3339, UTC, milliseconds).
 * Stateless; any thread.
 */
#ifndef PATCHBAY_CLOCK_H
#define PATCHBAY_CLOCK_H

#include <stdint.h>

#define CLOCK_ISO_BYTES 32

int64_t clock_wall_ms(void);
int64_t clock_mono_ms(void);
uint64_t clock_mono_us(void);
/* 2026-11-23T21:21:50.123Z */
void clock_format_iso(int64_t wall_ms, char out[CLOCK_ISO_BYTES]);

#endif
