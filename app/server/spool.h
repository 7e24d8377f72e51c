/*
 * spool — an append-only, fsync'd file of deliveries that could not be put
 * into Redis, so an outage of Redis never loses a delivery GitHub was told we
 * accepted.
 *
 * File: <data_dir>/spool/spool.log, a sequence of records
 *   "PBS1" | u32 payload length | u32 CRC-32C of the payload | payload
 * where the payload is the queue_delivery_t: delivery, received_ms, the body
 * and the job fields, each length-prefixed. A record is acknowledged (HTTP
 * 202) only after fdatasync returns. A torn record at the tail (a crash during
 * the write) fails its length or CRC check and is dropped when read: it was
 * never acknowledged. Every append and every drain holds flock(LOCK_EX) on the
 * file, so several patchbay processes may share one data dir.
 *
 * Draining hands each record back, in order, to a callback that enqueues it
 * through the same dedup script as the webhook path; the file is truncated only
 * after every record went in, so a crash mid-drain replays records, and dedup
 * makes the replay harmless.
 *
 * Memory: a spool_t owns its fd and path; records handed to the drain callback
 * live only during the call. Not thread-safe: one thread (the ingress thread)
 * owns a spool_t.
 */
#ifndef PATCHBAY_SPOOL_H
#define PATCHBAY_SPOOL_H

#include "jobs/queue/queue.h"

#include <stddef.h>
#include <stdint.h>

typedef struct spool_s spool_t;

#define SPOOL_ERR_BYTES 256

/* Creates <data_dir>/spool/ and opens the file. NULL with a reason in err. */
spool_t *spool_open(const char *data_dir, char *err, size_t err_len);
void spool_close(spool_t *s);

/* A delivery encoded for the spool: a self-contained copy, so it survives the
 * HTTP request it came from (the client may hang up while it waits for the
 * disk). Encoding is a memcpy; the checksum is computed by spool_append on
 * the ingress thread, off the event loop. */
typedef struct {
    unsigned char *data; /* owned; spool_record_free */
    size_t len;
} spool_record_t;

int spool_record_encode(spool_record_t *out, const queue_delivery_t *d);
void spool_record_free(spool_record_t *r);

/* Appends records and fdatasyncs once for all of them. Returns 0, or -1 with a
 * reason in err when not every record is safely on disk (then none counts:
 * the file is cut back to where it was). */
int spool_append(spool_t *s, spool_record_t *records, size_t n, char *err, size_t err_len);

/* Records in the file, counted at open and kept up to date (torn tails not
 * counted). */
size_t spool_depth(const spool_t *s);

/* Calls cb for each record in order. cb returns 0 to go on, non-zero to stop
 * (Redis went away): the file is then kept whole. When all records were taken,
 * the file is truncated. Returns the number of records taken (>= 0), or -1 on
 * an I/O error with a reason in err. */
typedef int (*spool_drain_cb)(const queue_delivery_t *d, void *ctx);
long spool_drain(spool_t *s, spool_drain_cb cb, void *ctx, char *err, size_t err_len);

#endif
