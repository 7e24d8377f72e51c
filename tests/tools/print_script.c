/*
 * print_script — prints one of the queue's Lua scripts, exactly as patchbay
 * sends it, so integration tests and benchmarks can make jobs through the
 * same enqueue transaction the webhook server uses (no test-only path in the
 * product). Usage: print_script enqueue|work
 */
#include "jobs/queue/queue.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "enqueue") == 0)
        fputs(QUEUE_ENQUEUE_LUA, stdout);
    else if (argc == 2 && strcmp(argv[1], "work") == 0)
        fputs(QUEUE_WORK_LUA, stdout);
    else {
        fprintf(stderr, "usage: print_script enqueue|work\n");
        return 2;
    }
    return 0;
}
