/*
 * job — what a job is, shared by the side that makes jobs (the webhook router)
 * and the side that stores and runs them (queue, workers): the kinds, the
 * states, and the named fields of a job record.
 *
 * A job record is a flat Redis hash (patchbay:job:<id>); the router fills a
 * job_fields_t with the fields it knows from the delivery, the queue adds the
 * id, status, attempts, timestamps and the raw payload. Keeping the record flat
 * and string-valued means any process, in any language, can read it with
 * HGETALL, and `patchbay jobs show` prints it without a schema.
 *
 * States, and the only transitions allowed (JOB_TRANSITIONS below; the
 * queue's scripts are built from the same list and refuse any other move):
 *
 *   queued  -> running      a worker took it
 *   queued  -> cancelled    stop / `jobs cancel` / superseded, before it ran
 *   queued  -> dead         its attempts were used up by crashed runs, or its
 *                           record cannot be read (malformed)
 *   running -> succeeded
 *   running -> failed       a permanent failure: retrying cannot help
 *   running -> queued       a retryable failure with attempts left (it waits
 *                           in the delayed set), or handed back by a worker
 *                           that stopped or died
 *   running -> cancelled    cancelled while running
 *   running -> dead         a retryable failure on its last attempt
 *   failed | dead | cancelled -> queued    `patchbay jobs retry`
 *
 * succeeded, failed, cancelled and dead are final: the job's worker has
 * acknowledged it and its record expires after the retention period. `dead`
 * means max_attempts were used up; the job is in the dead-letter stream.
 *
 * Memory: job_fields_t holds pointers it does not own; they must outlive it.
 */
#ifndef PATCHBAY_JOB_H
#define PATCHBAY_JOB_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    JOB_KIND_FIX = 0, /* change code on an issue, open a pull request */
    JOB_KIND_FOLLOWUP,  /* push more commits to a pull request patchbay opened */
    JOB_KIND_REVIEW,    /* review a pull request with inline comments */
    JOB_KIND_HELP,      /* answer "@patchbay help" with usage */
    JOB_KIND_STOP,      /* "@patchbay stop": the sender's own jobs stop at enqueue, other people's here,
                           after a live permission check */
    JOB_KIND_NOOP,      /* does nothing; tests and benchmarks */
    JOB_KIND_ASK,       /* answer a question with one reply; never a branch or a pull request */
    JOB_KIND__COUNT
} job_kind_t;

typedef enum {
    JOB_QUEUED = 0,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_DEAD,
    JOB_STATUS__COUNT
} job_status_t;

/* X(FROM, TO, from, to): every legal move, as enum suffixes and as names. */
#define JOB_TRANSITIONS(X)                                                                                              \
    X(QUEUED, RUNNING, queued, running)                                                                                 \
    X(QUEUED, CANCELLED, queued, cancelled)                                                                             \
    X(QUEUED, DEAD, queued, dead)                                                                                       \
    X(RUNNING, SUCCEEDED, running, succeeded)                                                                           \
    X(RUNNING, FAILED, running, failed)                                                                                 \
    X(RUNNING, QUEUED, running, queued)                                                                                 \
    X(RUNNING, CANCELLED, running, cancelled)                                                                           \
    X(RUNNING, DEAD, running, dead)                                                                                     \
    X(FAILED, QUEUED, failed, queued)                                                                                   \
    X(DEAD, QUEUED, dead, queued)                                                                                       \
    X(CANCELLED, QUEUED, cancelled, queued)

/* Whether from -> to is one of JOB_TRANSITIONS. */
int job_transition_allowed(job_status_t from, job_status_t to);
/* succeeded, failed, cancelled, dead */
int job_status_is_final(job_status_t status);

/* How long a job waits before its next attempt, after `attempts` failed ones
 * (1 = the first failure): base_ms doubled per further attempt, capped at
 * max_ms, then spread by +-JOB_RETRY_JITTER_PCT percent using `random` (any
 * 64-bit value; the caller draws it), so jobs that failed together (GitHub
 * down) do not come back together. Never less than 1 ms. */
#define JOB_RETRY_JITTER_PCT 25
int64_t job_retry_delay_ms(int attempts, int64_t base_ms, int64_t max_ms, uint64_t random);

const char *job_kind_name(job_kind_t kind);
/* -1 when unknown */
int job_kind_parse(const char *name);
const char *job_status_name(job_status_t status);
int job_status_parse(const char *name);

/* Field names of the job record that the router sets (the queue adds id,
 * status, attempts, delivery, created_at_ms, and packs what the scripts do
 * not read into one field: queue.h). */
#define JOB_F_KIND "kind"
#define JOB_F_EVENT "event"          /* X-GitHub-Event */
#define JOB_F_ACTION "action"
#define JOB_F_REPO "repo"            /* owner/name */
#define JOB_F_NUMBER "number"        /* issue or pull request number */
#define JOB_F_IS_PR "is_pr"          /* "1" when number is a pull request */
#define JOB_F_INSTALLATION "installation"
#define JOB_F_SENDER "sender"
#define JOB_F_INSTRUCTION "instruction"
#define JOB_F_COMMENT_ID "comment_id"
#define JOB_F_COMMENT_TYPE "comment_type" /* issue_comment | review_comment */
#define JOB_F_LABEL "label"
#define JOB_F_PATH "path"            /* review comment: file */
#define JOB_F_LINE "line"            /* review comment: line */
#define JOB_F_HEAD_SHA "head_sha"
#define JOB_F_HEAD_REF "head_ref"
#define JOB_F_AUTO "auto"            /* "1": queued automatically (auto review), the repo config decides */
#define JOB_F_DRAFT "draft"
#define JOB_F_TITLE "title"
#define JOB_F_MESSAGE "message"      /* help: what to say besides the usage */
#define JOB_F_INFERRED "inferred"    /* ask: "1" when the question rule chose the kind, not the word "ask" */
/* What a job reads of the webhook besides the routing fields, kept in the
 * record instead of the whole payload: each stored byte costs Redis memory,
 * the AOF and every rewrite, and the payload is mostly links and structure. */
#define JOB_F_SENDER_ID "sender_id"           /* the sender's numeric id (the co-author's noreply address) */
#define JOB_F_PRIVATE "private"               /* "1" or "0": repository.private */
#define JOB_F_ISSUE_BODY "issue_body"         /* the issue's body as the webhook showed it ("" for none) */
#define JOB_F_ISSUE_COMMENTS "issue_comments" /* its comment count then */
#define JOB_F_COMMENT_BODY "comment_body"     /* the whole comment that asked (absent when too long to copy) */
/* What the event itself is, whatever delivery carried it: "issue_comment.
 * created:<repo>:<comment id>", "issues.labeled:<repo>#<n>:<issue's
 * updated_at>:<label>", "pull_request.<action>:<repo>#<n>:<head sha>". GitHub
 * signs the body only, so a captured body replayed under a fresh
 * X-GitHub-Delivery is still this event: the queue makes one job of it. */
#define JOB_F_EVENT_ID "event_id"
#define JOB_EVENT_ID_MAX_BYTES 448

/* Fields the queue sets when it makes the record. */
#define JOB_F_DELIVERY "delivery"    /* X-GitHub-Delivery */
#define JOB_F_STOPS "stops"          /* stop: the sender's own jobs it stopped at once, comma-separated */
#define JOB_F_CLAIMS "claims"        /* stop: other people's jobs it asks to stop, once the sender's
                                        permission is checked live (comma-separated) */

/* Fields the job kinds set as they go: what a retry finds again, and what
 * `jobs show` and the dashboard show. */
#define JOB_F_PROGRESS_COMMENT_ID "progress_comment_id"
#define JOB_F_BRANCH "branch"
#define JOB_F_PUSHED_SHA "pushed_sha"
#define JOB_F_PR_URL "pr_url"
#define JOB_F_OUTCOME "outcome"        /* how it ended: pr, answered, or (reviews) why there is none */
#define JOB_F_REVIEW_URL "review_url"
#define JOB_F_REVIEWED_SHA "reviewed_sha"
#define JOB_F_CHECK_RUN_ID "check_run_id"
#define JOB_F_ENVIRONMENT "environment"   /* "node20 (sha256:...)": what the job's commands ran in */
#define JOB_F_REVIEW_ID "review_id"
#define JOB_F_PR_NUMBER "pr_number"
#define JOB_F_ANSWER_URL "answer_url"     /* ask (and a fix that answered): the reply's html_url */

#define JOB_MAX_FIELDS 32

typedef struct {
    const char *name;
    const char *value; /* NUL-terminated */
} job_field_t;

typedef struct {
    job_field_t items[JOB_MAX_FIELDS];
    size_t count;
} job_fields_t;

/* Appends a field; asserts there is room (the router's field set is fixed). */
void job_fields_add(job_fields_t *f, const char *name, const char *value);
/* The value of a field, or NULL. */
const char *job_fields_get(const job_fields_t *f, const char *name);

#endif
