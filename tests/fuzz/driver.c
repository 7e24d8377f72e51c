/*
 * A stand-in for libFuzzer in ordinary builds: runs LLVMFuzzerTestOneInput on
 * every file of the seed corpus directory given as argv[1], on mutations of
 * them, and on random inputs, so each build exercises the fuzz targets (under
 * the sanitizers in the sanitized run) without needing clang. Bounded: a fixed
 * number of iterations from a fixed seed, so failures reproduce.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DRIVER_MUTATIONS_PER_SEED 2000
#define DRIVER_RANDOM_INPUTS 5000
#define DRIVER_MAX_INPUT_BYTES (256 * 1024)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void run_copy(const uint8_t *data, size_t size)
{
    /* a private heap copy, so ASan sees reads past the end */
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
}

static void mutate_and_run(const uint8_t *seed, size_t size)
{
    static const char interesting[] = "{}[]\":,\\@`>~-\n 0123456789eE+.tfnu";
    uint8_t *buf = malloc(size + 64);
    if (buf == NULL)
        abort();
    for (int i = 0; i < DRIVER_MUTATIONS_PER_SEED; i++) {
        size_t n = size;
        memcpy(buf, seed, size);
        int edits = 1 + (int)(rng_next() % 4);
        for (int e = 0; e < edits; e++) {
            size_t pos = n ? rng_next() % n : 0;
            switch (rng_next() % 4) {
            case 0: if (n) buf[pos] = (uint8_t)rng_next(); break;
            case 1: if (n) buf[pos] = (uint8_t)interesting[rng_next() % (sizeof(interesting) - 1)]; break;
            case 2: n = pos; break; /* truncate */
            case 3:
                if (n < size + 63) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = (uint8_t)interesting[rng_next() % (sizeof(interesting) - 1)];
                    n++;
                }
                break;
            }
        }
        run_copy(buf, n);
    }
    free(buf);
}

int main(int argc, char **argv)
{
    int seeds = 0;
    if (argc > 1) {
        DIR *d = opendir(argv[1]);
        if (d == NULL) {
            fprintf(stderr, "cannot open corpus %s\n", argv[1]);
            return 1;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
            FILE *f = fopen(path, "rb");
            if (f == NULL)
                continue;
            uint8_t *data = malloc(DRIVER_MAX_INPUT_BYTES);
            size_t n = data ? fread(data, 1, DRIVER_MAX_INPUT_BYTES, f) : 0;
            fclose(f);
            if (data == NULL)
                abort();
            run_copy(data, n);
            mutate_and_run(data, n);
            free(data);
            seeds++;
        }
        closedir(d);
    }
    uint8_t buf[512];
    for (int i = 0; i < DRIVER_RANDOM_INPUTS; i++) {
        size_t n = rng_next() % sizeof(buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rng_next();
        run_copy(buf, n);
    }
    printf("fuzz driver: %d seeds, %d mutations each, %d random inputs: no crash\n", seeds, DRIVER_MUTATIONS_PER_SEED,
           DRIVER_RANDOM_INPUTS);
    return 0;
}
