"""Constants and small helpers shared by the fake GitHub's modules."""

import re
import secrets
import string

# Permission levels of GitHub App permissions.
LEVEL = {"none": 0, "read": 1, "write": 2, "admin": 3}

# What patchbay's App asks for (config/ manifest); tests may override.
DEFAULT_PERMISSIONS = {"contents": "write", "issues": "write", "pull_requests": "write",
                       "checks": "write", "metadata": "read"}
DEFAULT_EVENTS = ["issue_comment", "issues", "pull_request",
                  "pull_request_review_comment", "pull_request_review"]

# GitHub caps issue, PR, comment and review bodies at 65536 characters.
MAX_BODY = 65536

# Installation tokens live one hour.
TOKEN_TTL = 3600

DOC = {
    "rate": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
    "secondary": "https://docs.github.com/free-pro-team@latest/rest/overview/"
                 "rate-limits-for-the-rest-api#about-secondary-rate-limits",
    "create_pull": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
    "create_review": "https://docs.github.com/rest/pulls/reviews#create-a-review-for-a-pull-request",
    "review_comment": "https://docs.github.com/rest/pulls/comments"
                      "#create-a-review-comment-for-a-pull-request",
    "comment": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
    "reaction": "https://docs.github.com/rest/reactions/reactions",
    "labels": "https://docs.github.com/rest/issues/labels",
    "token": "https://docs.github.com/rest/apps/apps"
             "#create-an-installation-access-token-for-an-app",
    "check": "https://docs.github.com/rest/checks/runs",
    "contents": "https://docs.github.com/rest/repos/contents#get-repository-content",
}

NOT_ACCESSIBLE = "Resource not accessible by integration"
JWT_UNDECODABLE = "A JSON web token could not be decoded"


def rand_str(n, alphabet=string.ascii_letters + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


def slugify(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "app"
