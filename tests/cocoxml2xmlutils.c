/*
 * cocoxml2xmlutils.c: helpers shared by the coco XML tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "cocoxml2xmlutils.h"

#include "conf/cocomigrationdef.h"
#include "util/cocoerror.h"

char *
cocoTestSrcPath(const char *name)
{
    const char *srcdir = g_getenv("abs_srcdir");

    if (!srcdir)
        srcdir = ".";
    return g_build_filename(srcdir, name, NULL);
}

static gint
cocoTestCompareNames(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *
cocoTestListXML(const char *dir)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &err);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    g_assert_no_error(err);
    while ((name = g_dir_read_name(d))) {
        if (g_str_has_suffix(name, ".xml"))
            g_ptr_array_add(names, g_strdup(name));
    }
    g_ptr_array_sort(names, cocoTestCompareNames);
    return names;
}

char *
cocoTestReadFile(const char *path)
{
    g_autoptr(GError) err = NULL;
    char *text = NULL;

    g_file_get_contents(path, &text, NULL, &err);
    g_assert_no_error(err);
    return text;
}

bool
cocoTestGetExpect(const char *text, char **code, char **detail)
{
    const char *start = strstr(text, "<!-- expect: ");
    const char *end;
    g_autofree char *body = NULL;
    char *space;

    if (!start)
        return false;
    start += strlen("<!-- expect: ");
    if (!(end = strstr(start, "-->")))
        return false;
    body = g_strstrip(g_strndup(start, end - start));
    if ((space = strchr(body, ' '))) {
        *space = '\0';
        *detail = g_strdup(space + 1);
    } else {
        *detail = g_strdup("");
    }
    *code = g_strdup(body);
    return true;
}

void
cocoTestCheckError(const GError *err, const char *code, const char *detail)
{
    if (!err) {
        g_test_fail_printf("expected error '%s' (%s), got success", code,
                           detail);
        return;
    }
    g_assert_true(err->domain == COCO_ERROR);
    if (g_strcmp0(cocoErrorCodeToString(err->code), code) != 0) {
        g_test_fail_printf("expected error '%s', got '%s': %s", code,
                           NULLSTR(cocoErrorCodeToString(err->code)),
                           err->message);
        return;
    }
    if (detail && *detail && !strstr(err->message, detail)) {
        g_test_fail_printf("message of error '%s' lacks \"%s\": %s", code,
                           detail, err->message);
        return;
    }
    g_assert_null(strchr(err->message, '\n'));
    g_test_message("%s: %s", code, err->message);
}

GError *
cocoTestParseValidate(const char *xml)
{
    g_autoptr(CocoMigrationDef) def = NULL;
    GError *err = NULL;

    if (!(def = cocoMigrationDefParseString(xml, 0, &err)))
        return err;
    cocoMigrationDefValidate(def, &err);
    return err;
}
