/*
 * jslim — the copy of a webhook body that a job keeps.
 *
 * Every durable job stores the payload that made it, for its worker (issue,
 * comment, sender: reads it then need not make) and for `jobs show`. Redis
 * pays for each stored byte three times over: in memory for the retention
 * period, in the append-only file, and again in every AOF rewrite
 * (tests/bench/bench_enqueue.c: about 10 µs of Redis CPU per KB). Most of a
 * GitHub payload is API link templates: a 14 KB issue_comment carries some
 * 9 KB of "url", "*_url" members (repository.forks_url, user.followers_url,
 * ...) that nothing in patchbay reads, and indentation when the App is set to
 * send it. jslim drops both and keeps everything else byte for byte.
 *
 * Dropped: whitespace outside strings, and each object member whose key is
 * exactly "url" or ends in "_url" (compared as raw bytes), when its value is
 * a string or null; "html_url" is kept (jobs link to it). A member whose
 * value is an object or array is kept whatever its name.
 *
 * The input must be a document jscan_scan accepted (the router's job); then
 * the output is valid JSON with the same values apart from the dropped
 * members (tests/fuzz/fuzz_jslim.c checks this against jansson). On any other
 * input the output is unspecified but never longer than the input, and
 * nothing outside buf[0..len) and out[0..len) is touched.
 *
 * Memory: out has room for len bytes (it may be buf itself: the output is
 * never ahead of the input); nothing is allocated. Reentrant.
 */
#ifndef PATCHBAY_JSLIM_H
#define PATCHBAY_JSLIM_H

#include <stddef.h>

/* Writes the slim copy of buf[0..len) to out; returns its length. */
size_t jslim_payload(const char *buf, size_t len, char *out);

#endif
