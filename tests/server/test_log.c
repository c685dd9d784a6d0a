/* Logger: valid JSON lines, escaping, truncation that stays valid, level filter, redactor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/log.h"

static char *capture(void (*emit)(void))
{
    FILE *tmp = tmpfile();
    tw_log_setup(TW_LOG_INFO, fileno(tmp));
    emit();
    tw_log_setup(TW_LOG_INFO, 2);
    long n = ftell(tmp);
    (void)n;
    fflush(tmp);
    fseek(tmp, 0, SEEK_END);
    long len = ftell(tmp);
    rewind(tmp);
    char *buf = calloc(1, (size_t)len + 1);
    assert_int_equal(fread(buf, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return buf;
}

static void emit_escapes(void)
{
    tw_logline l;
    tw_log_begin(&l, TW_LOG_INFO, "t");
    tw_log_str(&l, "s", "quote\" back\\ nl\n ctl\x01 tab\t");
    tw_log_int(&l, "i", -42);
    tw_log_end(&l);
}

static void lines_are_valid_json_with_escapes(void **state)
{
    (void)state;
    char *out = capture(emit_escapes);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "s")),
                        "quote\" back\\ nl\n ctl\x01 tab\t");
    assert_int_equal(json_integer_value(json_object_get(j, "i")), -42);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    json_decref(j);
    free(out);
}

static void emit_huge(void)
{
    char big[8000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tw_logline l;
    tw_log_begin(&l, TW_LOG_WARN, "huge");
    tw_log_str(&l, "first", "kept");
    tw_log_str(&l, "big", big);
    tw_log_str(&l, "after", "dropped");
    tw_log_end(&l);
}

static void oversized_line_is_truncated_but_valid(void **state)
{
    (void)state;
    char *out = capture(emit_huge);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(json_string_value(json_object_get(j, "first")), "kept");
    assert_null(json_object_get(j, "after"));
    json_decref(j);
    free(out);
}

static void emit_debug(void)
{
    tw_logf(TW_LOG_DEBUG, "hidden", "x");
    tw_logf(TW_LOG_ERROR, "shown", "y %d", 7);
}

static void level_filter_drops_lower_levels(void **state)
{
    (void)state;
    char *out = capture(emit_debug);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "\"msg\":\"y 7\""));
    free(out);
}

static size_t upper_redactor(const char *line, size_t len, char *out, size_t cap)
{
    size_t n = len < cap ? len : cap;
    for (size_t i = 0; i < n; i++)
        out[i] = (line[i] == 'z') ? '*' : line[i];
    return n;
}

static void emit_secret(void)
{
    tw_log_set_redactor(upper_redactor);
    tw_logf(TW_LOG_INFO, "r", "zzz");
    tw_log_set_redactor(NULL);
}

static void redactor_sees_every_line(void **state)
{
    (void)state;
    char *out = capture(emit_secret);
    assert_null(strstr(out, "zzz"));
    assert_non_null(strstr(out, "***"));
    free(out);
}

static void level_names_parse(void **state)
{
    (void)state;
    assert_int_equal(tw_log_level_parse("debug"), TW_LOG_DEBUG);
    assert_int_equal(tw_log_level_parse("error"), TW_LOG_ERROR);
    assert_int_equal(tw_log_level_parse("loud"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_are_valid_json_with_escapes),
        cmocka_unit_test(oversized_line_is_truncated_but_valid),
        cmocka_unit_test(level_filter_drops_lower_levels),
        cmocka_unit_test(redactor_sees_every_line),
        cmocka_unit_test(level_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
