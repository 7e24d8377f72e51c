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
 * A set-up link carries a state token (random, single use, an hour) checked
 * in constant time, and once credentials exist the callback refuses to run
 * again: registration cannot be replayed to swap the App.
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

/* The manifest as GitHub takes it, with its URLs under base_url (no
 * trailing slash): the webhook at base_url + webhook_path, the callback at
 * base_url/setup/callback. NULL when the embedded YAML does not parse (a
 * build defect). */
json_t *appsetup_manifest(const char *base_url, const char *webhook_path);

/* A state token for a set-up link: the live one when it is younger than
 * APPSETUP_STATE_TTL_S, else a new one. 0, or -1 with errno. */
int appsetup_state(const char *data_dir, char out[65]);

/* Whether `state` is the live token; a match consumes it. 0 on a match. */
int appsetup_state_take(const char *data_dir, const char *state);

/* Exchanges a code at api_url (through ghapi, anonymously). 0 with *out the
 * answer (the caller's), or -1 with GitHub's words or the transport's in err. */
int appsetup_exchange(json_t **out, const char *api_url, const char *code, int timeout_ms, char *err, size_t err_len);

/* The set-up part of the status page: what to do, and the registration forms
 * (to github_url, for an account or, with org, for that organization). */
void appsetup_render(strbuf_t *html, const char *github_url, const char *base_url, const char *webhook_path,
                     const char *state, const char *org);

#endif
