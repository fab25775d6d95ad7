/*
 * cocovfiopolicytest.c: the VFIO + vIOMMU policy on domain XML files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "internal.h"
#include "vfio/cocovfiopolicy.h"
#include "util/cocoerror.h"

typedef struct {
    const char *file;
    int unfixed_code; /* 0 = accepted on a kernel without the fix */
    int fixed_code; /* 0 = accepted on a fixed kernel */
    bool wide;
    size_t nhostdevs;
    const char *device; /* named in the result and message */
    bool
        allow_unsafe; /* the <coco:hostdev allowUnsafeIommu='yes'/> in the file */
} PolicyCase;

static const PolicyCase cases[] = {
    {"hostdev-amd", COCO_ERROR_VFIO_UNSAFE, 0, true, 1, "0000:03:00.1", false},
    {"hostdev-virtio", COCO_ERROR_VFIO_UNSAFE, 0, true, 1, "0000:03:00.1",
     false},
    {"hostdev-virtio-aw64", COCO_ERROR_VFIO_UNSAFE, 0, true, 1, "0000:03:00.1",
     false},
    {"hostdev-virtio-aw48", 0, 0, false, 1, "0000:03:00.1", false},
    {"hostdev-intel", 0, 0, false, 1, "0000:03:00.1", false},
    {"hostdev-smmuv3", 0, 0, false, 1, "0000:03:00.1", false},
    {"hostdev-no-iommu", 0, 0, false, 1, "0000:03:00.1", false},
    {"no-hostdev-amd", 0, 0, true, 0, NULL, false},
    {"interface-hostdev-virtio", COCO_ERROR_VFIO_UNSAFE, 0, true, 1,
     "0000:41:10.2", false},
    {"mdev-amd", COCO_ERROR_VFIO_UNSAFE, 0, true, 1,
     "c2177883-f1bb-47f0-914d-32a22e3a8804", false},
    {"hostdev-amd-override", 0, 0, true, 1, "0000:03:00.1", true},
    {"bad-awbits", COCO_ERROR_XML_NUMBER, COCO_ERROR_XML_NUMBER, false, 0, NULL,
     false},
    {"malformed", COCO_ERROR_XML_MALFORMED, COCO_ERROR_XML_MALFORMED, false, 0,
     NULL, false},
};

static char *
loadCase(const char *name)
{
    const char *srcdir = g_getenv("abs_srcdir");
    g_autofree char *path = NULL;
    char *xml = NULL;
    g_autoptr(GError) err = NULL;

    path = g_strdup_printf("%s/cocovfiopolicydata/%s.xml",
                           srcdir ? srcdir : ".", name);
    g_file_get_contents(path, &xml, NULL, &err);
    g_assert_no_error(err);
    return xml;
}

static void
checkOne(const PolicyCase *pc, CocoVfioFixStatus fix, int expect)
{
    g_autofree char *xml = loadCase(pc->file);
    CocoMigrationDef def;
    CocoVfioPolicyResult res;
    g_autoptr(GError) err = NULL;
    int rc;

    memset(&def, 0, sizeof(def));
    def.technology = COCO_TECHNOLOGY_SEV_SNP;
    def.has_hostdev = true;
    def.hostdev_action = COCO_HOSTDEV_ACTION_DETACH;
    def.has_allow_unsafe_iommu = pc->allow_unsafe;
    def.allow_unsafe_iommu = pc->allow_unsafe;

    rc = cocoVfioPolicyCheckDomain(
        xml, &def, fix, fix == COCO_VFIO_FIX_UNKNOWN ? "group 12: busy" : NULL,
        &res, &err);
    if (expect == 0) {
        if (err)
            g_error("%s (%s): %s", pc->file, cocoVfioFixStatusTypeToString(fix),
                    err->message);
        g_assert_cmpint(rc, ==, 0);
        g_assert_cmpuint(res.nhostdevs, ==, pc->nhostdevs);
        g_assert_cmpint(res.wide_iova, ==, pc->wide);
        g_assert_cmpstr(res.first_hostdev, ==, pc->device);
        g_assert_cmpint(res.overridden, ==,
                        pc->allow_unsafe && (fix == COCO_VFIO_FIX_ABSENT ||
                                             fix == COCO_VFIO_FIX_UNKNOWN));
        cocoVfioPolicyResultClear(&res);
    } else {
        g_assert_cmpint(rc, ==, -1);
        g_assert_error(err, COCO_ERROR, expect);
        if (expect == COCO_ERROR_VFIO_UNSAFE) {
            /* Names the domain, the device and each remedy. */
            g_assert_nonnull(strstr(err->message, pc->file));
            g_assert_nonnull(strstr(err->message, pc->device));
            g_assert_nonnull(strstr(err->message, "6.18"));
            g_assert_nonnull(strstr(err->message, "aw_bits"));
            g_assert_nonnull(strstr(err->message, "allowUnsafeIommu='yes'"));
            /* "lacks the fix" only when the probe said so */
            if (fix == COCO_VFIO_FIX_UNKNOWN) {
                g_assert_nonnull(
                    strstr(err->message, "is unknown (group 12: busy)"));
                g_assert_null(strstr(err->message, "lacks"));
            } else {
                g_assert_nonnull(strstr(err->message, "lacks the range-safe"));
            }
        }
        g_assert_null(res.first_hostdev);
    }
}

static void
testCases(void)
{
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        checkOne(&cases[i], COCO_VFIO_FIX_ABSENT, cases[i].unfixed_code);
        checkOne(&cases[i], COCO_VFIO_FIX_UNKNOWN, cases[i].unfixed_code);
        checkOne(&cases[i], COCO_VFIO_FIX_PRESENT, cases[i].fixed_code);
        checkOne(&cases[i], COCO_VFIO_FIX_NOT_NEEDED, cases[i].fixed_code);
    }
}

static void
testNoDef(void)
{
    g_autofree char *xml = loadCase("hostdev-amd-override");
    g_autoptr(GError) err = NULL;

    /* Without the parsed coco element there is no override. */
    g_assert_cmpint(cocoVfioPolicyCheckDomain(xml, NULL, COCO_VFIO_FIX_ABSENT,
                                              NULL, NULL, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_VFIO_UNSAFE);
    g_clear_error(&err);
    g_assert_cmpint(cocoVfioPolicyCheckDomain(NULL, NULL, COCO_VFIO_FIX_ABSENT,
                                              NULL, NULL, &err),
                    ==, -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/vfio/policy/cases", testCases);
    g_test_add_func("/vfio/policy/no-def", testNoDef);
    return g_test_run();
}
