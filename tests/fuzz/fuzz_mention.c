/*
 * fuzz_mention — mention_find on arbitrary comment bodies. Beyond not
 * crashing, every answer must hold up: offsets and the instruction lie inside
 * the input, the text at `at` really is "@patchbay", the instruction carries
 * no surrounding whitespace, the handle matches whatever its case, and
 * reading from the mention itself finds the same mention with the same answer
 * (nothing before it may change what follows it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/webhook/mention.h"

#define HANDLE "patchbay"
#define HANDLE_LEN (sizeof(HANDLE) - 1)

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c | 0x20 : c;
}

static int same(const mention_t *a, const mention_t *b)
{
    return a->command == b->command && a->at == b->at && a->instruction == b->instruction &&
           a->instruction_len == b->instruction_len && a->worded == b->worded;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    mention_t m;
    mention_command_t c = mention_find(text, size, HANDLE, &m);
    if (c != m.command || c < MENTION_NONE || c > MENTION_ASK)
        abort();
    /* the question rule reads any text, in bounds, and one line of it only */
    int q = mention_is_question(m.instruction, m.instruction_len);
    if (q != 0 && q != 1)
        abort();
    if (q && c == MENTION_NONE)
        abort(); /* an empty instruction is never a question */

    mention_t upper;
    mention_find(text, size, "PatchBay", &upper);
    if (!same(&m, &upper))
        abort();

    if (c == MENTION_NONE) {
        if (m.at != 0 || m.instruction == NULL || m.instruction_len != 0)
            abort();
        return 0;
    }

    if (m.at >= size || size - m.at < 1 + HANDLE_LEN || data[m.at] != '@')
        abort();
    for (size_t k = 0; k < HANDLE_LEN; k++)
        if (lower(data[m.at + 1 + k]) != HANDLE[k])
            abort();

    const char *after = text + m.at + 1 + HANDLE_LEN;
    if (m.instruction < after || m.instruction > text + size || m.instruction_len > (size_t)(text + size - m.instruction))
        abort();
    if (m.instruction_len > 0 &&
        (is_space((unsigned char)m.instruction[0]) || is_space((unsigned char)m.instruction[m.instruction_len - 1])))
        abort();

    mention_t tail;
    if (mention_find(text + m.at, size - m.at, HANDLE, &tail) != c || tail.at != 0 || tail.instruction != m.instruction ||
        tail.instruction_len != m.instruction_len)
        abort();
    return 0;
}
