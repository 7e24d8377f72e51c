/*
 * secret — the secrets patchbay makes for people, not for GitHub: the
 * dashboard token and the one-time set-up code. Each is random (OpenSSL's
 * RAND_bytes), kept in a 0600 file under the data dir so that every process
 * of a deployment, and the operator with `cat`, finds the same one, compared
 * in constant time, and printed once, at the start that made it.
 *
 * Creation is first-come: a new value is written to a private temporary file
 * and linked into place, which fails when another process got there first;
 * that process's value is then the one read back. Two processes starting
 * together on one data dir therefore agree, and neither prints a value that
 * is not in effect.
 *
 * Memory: values are written into the caller's buffers; callers wipe them
 * (OPENSSL_cleanse) when done. Reentrant; blocking file I/O, at start or on
 * a request that is rare by nature (set-up).
 */
#ifndef PATCHBAY_SECRET_H
#define PATCHBAY_SECRET_H

#include <stddef.h>

/* A dashboard token: 32 random bytes in hex. */
#define SECRET_TOKEN_BYTES 64
/* A set-up code people type: 16 characters of Crockford's base32 (80 bits) in
 * four groups, "7K3Q-M2XD-9PWF-R4TB". */
#define SECRET_CODE_BYTES 19

/* 2 * nbytes hex digits into out (out_len > 2 * nbytes). 0, or -1 when the
 * random generator fails. */
int secret_random_hex(char *out, size_t out_len, size_t nbytes);

/* A fresh set-up code into out[SECRET_CODE_BYTES + 1]. 0 or -1. */
int secret_random_code(char *out);

/* The code as typed ("7k3q m2xd-9pwf r4tb", with O for 0 and I or L for 1)
 * in its canonical form into out[SECRET_CODE_BYTES + 1]. 0, or -1 when it is
 * not 16 characters of the alphabet. */
int secret_code_normalize(const char *typed, size_t len, char *out);

/* dir/name's first line into out (NUL-terminated, no newline). 0; -1 with
 * errno when it cannot be read or is empty or longer than out. */
int secret_file_read(const char *dir, const char *name, char *out, size_t out_len);

/* The value in dir/name; when there is none, `fresh` is put there first (dir
 * made 0700 when missing, the file 0600). *created is 1 when this call's
 * value is the one in effect now. 0, or -1 with errno. */
int secret_file_ensure(const char *dir, const char *name, const char *fresh, char *out, size_t out_len,
                       int *created);

/* Replaces dir/name with value (0600, atomically). 0, or -1 with errno. */
int secret_file_replace(const char *dir, const char *name, const char *value);

/* Whether given[0..given_len) is `expected`, in time that depends only on
 * the lengths. An empty `expected` matches nothing. */
int secret_equals(const char *expected, const char *given, size_t given_len);

#endif
