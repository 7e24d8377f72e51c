/*
 * appsetup — registering the GitHub App from its manifest (GitHub's manifest
 * flow, as Probot does it), and the credentials that registration leaves.
 *
 * With no App credentials, the status page offers a form that posts
 * config/app-manifest.yml (embedded in the binary, its URLs filled in from
 * server.public_url, else from the address the browser used) to GitHub, for
 * a personal account or an organization. GitHub sends the browser back to
 * /setup/callback with a code; the code is exchanged (POST
 * /app-manifests/{code}/conversions) for the new App's id, slug, private key
 * and webhook secret, which are saved under <data_dir>/github-app/ (0600
 * files in a 0700 directory). Every part of patchbay that finds no
 * credentials in its config looks there (config_load at start, the webhook
 * threads and the workers while running), so a running patchbay takes the
 * new App without a restart.
 *
 * Set-up belongs to whoever holds the machine, not to whoever finds the page
 * first: an unconfigured patchbay makes a one-time set-up code at every start
 * (printed in its log, kept in <data_dir>/github-app/setup-code, 0600), and
 * the forms appear only to a browser that presented it. That browser gets a
 * session cookie (an hour; HMAC of the code, so a new start's code voids it;
 * SameSite=Lax, so GitHub's redirect back carries it). No address is exempt:
 * behind a reverse proxy every visitor comes from loopback. A set-up link
 * carries a state token (random, single use, an hour) bound to that session
 * and checked in constant time, and once credentials exist set-up refuses to
 * run again: registration cannot be replayed to swap the App.
 *
 * Memory: strings returned are the caller's; appcreds_t is plain data.
 * Blocking file and network I/O: set-up happens once, before patchbay can
 * accept any delivery.
 */
#ifndef PATCHBAY_APPSETUP_H
#define PATCHBAY_APPSETUP_H

#include "app/common/appcreds.h"
#include "app/common/strbuf.h"

#include <jansson.h>
#include <stddef.h>

#define APPSETUP_STATE_TTL_S 3600
#define APPSETUP_SESSION_TTL_S 3600
#define APPSETUP_NONCE_BYTES 32 /* hex digits */
#define APPSETUP_CODE_FILE "setup-code"
#define APPSETUP_COOKIE "patchbay_setup"

/* The manifest as GitHub takes it, with its URLs under base_url (no
 * trailing slash): the webhook at base_url + webhook_path, the callback at
 * base_url/setup/callback. NULL when the embedded YAML does not parse (a
 * build defect). */
json_t *appsetup_manifest(const char *base_url, const char *webhook_path);

/* A fresh set-up code into code[SECRET_CODE_BYTES + 1] (secret.h), replacing
 * the last start's in <data_dir>/github-app/setup-code. 0, or -1 with errno. */
int appsetup_code_new(const char *data_dir, char *code);

/* Whether `typed` (as a person types it: any case, with or without dashes)
 * is the code in effect. 0 on a match. */
int appsetup_code_check(const char *data_dir, const char *typed, size_t len);

/* A session cookie's value for a browser that presented the code. 0 or -1. */
int appsetup_session_new(const char *data_dir, char *cookie, size_t len);

/* Whether cookie[0..len) is a live session under the code in effect; 0 with
 * its nonce in nonce[APPSETUP_NONCE_BYTES + 1], which binds states to it. */
int appsetup_session_check(const char *data_dir, const char *cookie, size_t len, char *nonce);

/* A state token for a set-up link of the session `nonce`: the live one when
 * it is that session's and younger than APPSETUP_STATE_TTL_S, else a new one
 * (which voids any other session's). 0, or -1 with errno. */
int appsetup_state(const char *data_dir, const char *nonce, char out[65]);

/* Whether `state` is the live token of session `nonce`; a match consumes it.
 * 0 on a match. */
int appsetup_state_take(const char *data_dir, const char *state, const char *nonce);

/* After a registration: the code and any state are of no use any more. */
void appsetup_finish(const char *data_dir);

/* Exchanges a code at api_url (through ghapi, anonymously). 0 with *out the
 * answer (the caller's), or -1 with GitHub's words or the transport's in err. */
int appsetup_exchange(json_t **out, const char *api_url, const char *code, int timeout_ms, char *err, size_t err_len);

/* The form that asks for the set-up code, with a note (NULL: none) above it. */
void appsetup_render_code_form(strbuf_t *html, const char *note);

/* The set-up part of the status page: what to do, and the registration forms
 * (to github_url, for an account or, with org, for that organization). */
void appsetup_render(strbuf_t *html, const char *github_url, const char *base_url, const char *webhook_path,
                     const char *state, const char *org);

#endif
