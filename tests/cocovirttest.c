/*
 * cocovirttest.c: libvirt glue against libvirt's real test driver
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "virt/cocovirt.h"
#include "libvirt-coco/coco-migration-def.h"

#define ELEMENT                                                                \
 "<coco:migration xmlns:coco=\"" COCO_MIGRATION_NAMESPACE_URI                  \
 "\" technology=\"sev\">"                                                      \
 "<coco:destinations><coco:minTcb component=\"module\" svn=\"1\"/>"            \
 "</coco:destinations></coco:migration>"

static virConnectPtr
testConnect(void)
{
    g_autoptr(GError) err = NULL;
    virConnectPtr conn = cocoVirConnect("test:///default", &err);

    g_assert_no_error(err);
    g_assert_nonnull(conn);
    return conn;
}

static void
testLookup(void)
{
    g_autoptr(virConnect) conn = testConnect();
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virDomain) byid = NULL;
    g_autoptr(GError) err = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];
    g_autoptr(virDomain) byuuid = NULL;

    dom = cocoVirLookupDomain(conn, "test", &err);
    g_assert_no_error(err);
    g_assert_nonnull(dom);

    byid = cocoVirLookupDomain(conn, "1", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(virDomainGetName(byid), ==, "test");

    g_assert_cmpint(virDomainGetUUIDString(dom, uuid), ==, 0);
    byuuid = cocoVirLookupDomain(conn, uuid, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(virDomainGetName(byuuid), ==, "test");

    g_assert_null(cocoVirLookupDomain(conn, "no-such-guest", &err));
    g_assert_error(err, COCO_ERROR, COCO_ERROR_LIBVIRT);
    g_assert_cmpint(cocoErrorGetLibvirtCode(err), ==, VIR_ERR_NO_DOMAIN);
    g_assert_nonnull(strstr(err->message, "'no-such-guest'"));
}

static void
testMetadataAbsent(void)
{
    g_autoptr(virConnect) conn = testConnect();
    g_autoptr(virDomain) dom = cocoVirLookupDomain(conn, "test", NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *xml = NULL;

    /* VIR_ERR_NO_DOMAIN_METADATA reads as "not configured", not an error. */
    g_assert_cmpint(cocoVirGetMetadata(dom, VIR_DOMAIN_AFFECT_LIVE, &xml, &err),
                    ==, 0);
    g_assert_no_error(err);
    g_assert_null(xml);
    g_assert_null(virGetLastError());
}

static void
testMetadataRoundTrip(void)
{
    g_autoptr(virConnect) conn = testConnect();
    g_autoptr(virDomain) dom = cocoVirLookupDomain(conn, "test", NULL);
    g_autoptr(GError) err = NULL;
    g_autofree char *live = NULL;
    g_autofree char *config = NULL;
    g_autofree char *gone = NULL;

    g_assert_cmpint(
        cocoVirSetMetadata(dom, ELEMENT, VIR_DOMAIN_AFFECT_LIVE, &err), ==, 0);
    g_assert_no_error(err);

    g_assert_cmpint(
        cocoVirGetMetadata(dom, VIR_DOMAIN_AFFECT_LIVE, &live, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_nonnull(live);
    /* Read back with its namespace, every element prefixed. */
    g_assert_cmpstr(live, ==,
                    "<coco:migration xmlns:coco=\"" COCO_MIGRATION_NAMESPACE_URI
                    "\" technology=\"sev\">\n"
                    "  <coco:destinations>\n"
                    "    <coco:minTcb component=\"module\" svn=\"1\"/>\n"
                    "  </coco:destinations>\n"
                    "</coco:migration>");

    /* --live only: the persistent definition stays without the element. */
    g_assert_cmpint(
        cocoVirGetMetadata(dom, VIR_DOMAIN_AFFECT_CONFIG, &config, &err), ==,
        0);
    g_assert_no_error(err);
    g_assert_null(config);

    g_assert_cmpint(cocoVirSetMetadata(dom, NULL, VIR_DOMAIN_AFFECT_LIVE, &err),
                    ==, 0);
    g_assert_cmpint(
        cocoVirGetMetadata(dom, VIR_DOMAIN_AFFECT_LIVE, &gone, &err), ==, 0);
    g_assert_null(gone);
}

static void
testMetadataError(void)
{
    g_autoptr(virConnect) conn = testConnect();
    g_autoptr(virDomain) dom = cocoVirLookupDomain(conn, "test", NULL);
    g_autoptr(GError) err = NULL;

    g_autoptr(GError) err2 = NULL;

    /* Malformed XML never reaches libvirt. */
    g_assert_cmpint(cocoVirSetMetadata(dom, "<coco:migration", 0, &err), ==,
                    -1);
    g_assert_error(err, COCO_ERROR, COCO_ERROR_XML_MALFORMED);

    /* libvirt's own refusal (an unknown flag) keeps libvirt's code. */
    g_assert_cmpint(cocoVirSetMetadata(dom, ELEMENT, 1U << 30, &err2), ==, -1);
    g_assert_error(err2, COCO_ERROR, COCO_ERROR_LIBVIRT);
    g_assert_cmpint(cocoErrorGetLibvirtCode(err2), ==, VIR_ERR_INVALID_ARG);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    cocoVirInitialize();
    g_test_add_func("/virt/lookup", testLookup);
    g_test_add_func("/virt/metadata/absent", testMetadataAbsent);
    g_test_add_func("/virt/metadata/round-trip", testMetadataRoundTrip);
    g_test_add_func("/virt/metadata/error", testMetadataError);
    return g_test_run();
}
