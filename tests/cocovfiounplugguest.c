/*
 * cocovfiounplugguest.c: QEMU's own VFIO teardown on a real kernel, with
 * and without the interposer (runs inside the integration test's guest)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: cocovfiounplugguest QEMU-COCO QEMU INTERPOSER.so BDF yes|no
 *
 * Runs by tests/cocovfiointegration.sh inside a QEMU TCG guest with Debian's
 * kernel (type1 without the 6.18 fix), an amd-iommu (IOVAs up to 2^64-1)
 * and the "edu" device bound to vfio-pci. It starts the real QEMU as
 * libvirt does, through qemu-coco (its monitor a listening socket passed
 * by descriptor), with the host device behind a virtio-iommu, whose 64-bit
 * input range lets a guest map the top of the IOVA space; "yes" or "no"
 * is qemu-coco's vfio_interposer.
 *
 * No guest runs in that QEMU (-S): this program plays the guest's driver.
 * It drives the virtio-iommu through QEMU's own monitor: port I/O with
 * HMP "o" and "i" for PCI configuration space, the virtio structures
 * through the VIRTIO_PCI_CAP_PCI_CFG window, and the virtqueue in guest
 * RAM, a shared memory-backend-file mapped here too. It attaches the host
 * device to a domain and maps a low page, the page below the top and the
 * top page of the IOVA space (QEMU's vfio_iommu_map_notify() maps each
 * into the container), then hot-unplugs the device (device_del and the
 * ACPI eject a guest would do). QEMU's region_del then unmaps the 2^64
 * section in two halves, the second ending at 2^64.
 *
 * It prints the locked memory of QEMU (VmLck: type1's pinned pages) before
 * the maps, after them and after the unplug, QEMU's log, and a last line
 * "RESULT ..." with "pinned-after-unplug=KB baseline=KB". With the
 * interposer it also reads the relay's copy of the interposer's VFIO state
 * (x-coco-query-relay, docs/vfio.rst "The state report") while the device
 * is mapped and after DEVICE_DELETED, as virt-coco migrate's detach
 * confirms it: "named-before=1 open-after=0 mappings-after=0" when the
 * state named the device and then held nothing (-1: no state).
 */

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define RAM_MB 32
#define RAM_PATH "/dev/shm/vfio-unplug-ram"
#define VIOMMU_SLOT 4
#define HOSTDEV_SLOT 5
#define PG 0x1000ULL
#define TOP (G_MAXUINT64 - PG + 1)
#define TIMEOUT_MS 300000

/* guest-physical layout of the virtqueue and the buffers */
#define Q_SIZE 8
#define Q_DESC 0x100000ULL
#define Q_AVAIL 0x101000ULL
#define Q_USED 0x102000ULL
#define Q_REQ 0x103000ULL
#define Q_TAIL 0x103800ULL
#define PAGE_TOP 0x200000ULL
#define PAGE_BELOW 0x201000ULL
#define PAGE_LOW 0x202000ULL

#define ACPI_PCIHP_EJ 0xae08
#define ACPI_PCIHP_SEL 0xae10

typedef struct {
    int fd;
    GString *buf;
    GPtrArray *events; /* event names seen */
} Qmp;

/* QEMU's standard error: the domain log, with the interposer's lines. */
static char *qemuLog;

static void
printLog(const char *use)
{
    g_autofree char *text = NULL;

    if (qemuLog && g_file_get_contents(qemuLog, &text, NULL, NULL))
        printf("--- QEMU's log (vfio_interposer = %s) ---\n%s---\n", use, text);
}

static G_NORETURN void die(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static void
die(const char *fmt, ...)
{
    va_list ap;

    printLog("?");
    printf("RESULT FAIL: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static JsonObject *
qmpRead(Qmp *q)
{
    for (;;) {
        char *nl = memchr(q->buf->str, '\n', q->buf->len);
        struct pollfd pfd = {q->fd, POLLIN, 0};
        char chunk[4096];
        ssize_t n;

        if (nl) {
            g_autoptr(JsonParser) p = json_parser_new();
            g_autofree char *line = g_strndup(q->buf->str, nl - q->buf->str);
            JsonNode *root;

            g_string_erase(q->buf, 0, nl - q->buf->str + 1);
            if (!json_parser_load_from_data(p, line, -1, NULL) ||
                !(root = json_parser_get_root(p)) ||
                !JSON_NODE_HOLDS_OBJECT(root))
                die("QMP sent '%s'", line);
            return json_object_ref(json_node_get_object(root));
        }
        if (poll(&pfd, 1, TIMEOUT_MS) != 1)
            die("QMP timed out");
        n = read(q->fd, chunk, sizeof(chunk));
        if (n <= 0)
            die("QMP closed");
        g_string_append_len(q->buf, chunk, n);
    }
}

/* A command's "return" (an error is fatal); events are recorded. */
static JsonNode *
qmpCommand(Qmp *q, const char *execute, JsonObject *args)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;
    g_autofree char *line = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "execute");
    json_builder_add_string_value(b, execute);
    if (args) {
        JsonNode *a = json_node_new(JSON_NODE_OBJECT);

        json_node_take_object(a, args);
        json_builder_set_member_name(b, "arguments");
        json_builder_add_value(b, a);
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    text = json_to_string(root, FALSE);
    line = g_strdup_printf("%s\n", text);
    if (write(q->fd, line, strlen(line)) != (ssize_t)strlen(line))
        die("cannot write to QMP");
    for (;;) {
        g_autoptr(JsonObject) o = qmpRead(q);

        if (json_object_has_member(o, "event")) {
            g_ptr_array_add(
                q->events, g_strdup(json_object_get_string_member(o, "event")));
            continue;
        }
        if (json_object_has_member(o, "error"))
            die("'%s' failed: %s", execute,
                json_object_get_string_member(
                    json_object_get_object_member(o, "error"), "desc"));
        return json_node_copy(json_object_get_member(o, "return"));
    }
}

static char *hmp(Qmp *q, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static char *
hmp(Qmp *q, const char *fmt, ...)
{
    JsonObject *args = json_object_new();
    g_autoptr(JsonNode) ret = NULL;
    g_autofree char *cmd = NULL;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    json_object_set_string_member(args, "command-line", cmd);
    ret = qmpCommand(q, "human-monitor-command", args);
    return g_strdup(json_node_get_string(ret));
}

static void
outl(Qmp *q, unsigned int port, uint32_t val)
{
    g_autofree char *r = hmp(q, "o /w 0x%x 0x%x", port, val);

    /* QEMU reports errors of what the write set off (a refused DMA map)
     * on the monitor that issued it */
    if (*r)
        printf("QEMU (HMP o 0x%x): %s", port, r);
}

static uint32_t
inl(Qmp *q, unsigned int port)
{
    g_autofree char *r = hmp(q, "i /w 0x%x", port);
    const char *eq = strchr(r, '=');

    if (!eq)
        die("HMP 'i' answered '%s'", r);
    return (uint32_t)g_ascii_strtoull(eq + 1, NULL, 16);
}

static uint32_t
cfgRead(Qmp *q, unsigned int slot, unsigned int reg)
{
    outl(q, 0xcf8, 0x80000000U | (slot << 11) | (reg & 0xfc));
    return inl(q, 0xcfc);
}

static void
cfgWrite(Qmp *q, unsigned int slot, unsigned int reg, uint32_t val)
{
    outl(q, 0xcf8, 0x80000000U | (slot << 11) | (reg & 0xfc));
    outl(q, 0xcfc, val);
}

/* The virtio-iommu's modern registers through VIRTIO_PCI_CAP_PCI_CFG. */
typedef struct {
    Qmp *q;
    unsigned int cfgcap; /* config-space offset of the PCI_CFG capability */
    uint32_t common;
    uint32_t notify;
    uint32_t mult;
    uint16_t notify_off;
    uint8_t *ram;
    uint16_t avail;
} Viommu;

static void
vioWrite(Viommu *v, uint32_t off, unsigned int len, uint32_t val)
{
    cfgWrite(v->q, VIOMMU_SLOT, v->cfgcap + 8, off);
    cfgWrite(v->q, VIOMMU_SLOT, v->cfgcap + 12, len);
    cfgWrite(v->q, VIOMMU_SLOT, v->cfgcap + 16, val);
}

static uint32_t
vioRead(Viommu *v, uint32_t off, unsigned int len)
{
    uint32_t val;

    cfgWrite(v->q, VIOMMU_SLOT, v->cfgcap + 8, off);
    cfgWrite(v->q, VIOMMU_SLOT, v->cfgcap + 12, len);
    val = cfgRead(v->q, VIOMMU_SLOT, v->cfgcap + 16);
    return len == 4 ? val : val & ((1U << (8 * len)) - 1);
}

static void
vioInit(Viommu *v)
{
    unsigned int ptr;
    uint32_t id = cfgRead(v->q, VIOMMU_SLOT, 0);
    uint32_t features;
    int i;

    if (id != 0x10571af4)
        die("no virtio-iommu in slot %d (id 0x%08x)", VIOMMU_SLOT, id);
    /* bus master: the device reads and writes its queue in guest RAM */
    cfgWrite(v->q, VIOMMU_SLOT, 4,
             (cfgRead(v->q, VIOMMU_SLOT, 4) & 0xffff) | 0x4);
    for (ptr = cfgRead(v->q, VIOMMU_SLOT, 0x34) & 0xff, i = 0; ptr && i < 32;
         i++) {
        uint32_t hdr = cfgRead(v->q, VIOMMU_SLOT, ptr);
        unsigned int type = hdr >> 24;

        if ((hdr & 0xff) == 0x09) {
            uint32_t off = cfgRead(v->q, VIOMMU_SLOT, ptr + 8);

            if (type == 1)
                v->common = off;
            else if (type == 2) {
                v->notify = off;
                v->mult = cfgRead(v->q, VIOMMU_SLOT, ptr + 16);
            } else if (type == 5)
                v->cfgcap = ptr;
        }
        ptr = (hdr >> 8) & 0xfc;
    }
    if (!v->cfgcap || !v->notify)
        die("the virtio-iommu has no PCI_CFG or notify capability");
    vioWrite(v, v->common + 0x14, 1, 0); /* reset */
    vioWrite(v, v->common + 0x14, 1, 1); /* ACKNOWLEDGE */
    vioWrite(v, v->common + 0x14, 1, 3); /* DRIVER */
    vioWrite(v, v->common + 0x00, 4, 0);
    features = vioRead(v, v->common + 0x04, 4);
    if (!(features & (1U << 2)))
        die("the virtio-iommu does not offer MAP_UNMAP");
    vioWrite(v, v->common + 0x08, 4, 0);
    vioWrite(v, v->common + 0x0c, 4, features & 0x7);
    vioWrite(v, v->common + 0x08, 4, 1);
    vioWrite(v, v->common + 0x0c, 4, 1); /* VIRTIO_F_VERSION_1 */
    vioWrite(v, v->common + 0x14, 1, 0xb); /* FEATURES_OK */
    if (!(vioRead(v, v->common + 0x14, 1) & 0x8))
        die("the virtio-iommu refused the features");
    vioWrite(v, v->common + 0x16, 2, 0); /* requestq */
    vioWrite(v, v->common + 0x18, 2, Q_SIZE);
    vioWrite(v, v->common + 0x20, 4, Q_DESC);
    vioWrite(v, v->common + 0x24, 4, 0);
    vioWrite(v, v->common + 0x28, 4, Q_AVAIL);
    vioWrite(v, v->common + 0x2c, 4, 0);
    vioWrite(v, v->common + 0x30, 4, Q_USED);
    vioWrite(v, v->common + 0x34, 4, 0);
    v->notify_off = vioRead(v, v->common + 0x1e, 2);
    vioWrite(v, v->common + 0x1c, 2, 1);
    vioWrite(v, v->common + 0x14, 1, 0xf); /* DRIVER_OK */
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static void
put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, v & 0xffffffff);
    put32(p + 4, v >> 32);
}

/* One request on the requestq; returns the device's status byte. */
static uint8_t
vioRequest(Viommu *v, const uint8_t *req, size_t len)
{
    uint8_t *desc = v->ram + Q_DESC;
    uint16_t used;

    memcpy(v->ram + Q_REQ, req, len);
    v->ram[Q_TAIL] = 0xff;
    put64(desc, Q_REQ);
    put32(desc + 8, len);
    put16(desc + 12, 1); /* NEXT */
    put16(desc + 14, 1);
    put64(desc + 16, Q_TAIL);
    put32(desc + 24, 4);
    put16(desc + 28, 2); /* WRITE */
    put16(desc + 30, 0);
    put16(v->ram + Q_AVAIL + 4 + 2 * (v->avail % Q_SIZE), 0);
    v->avail++;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    put16(v->ram + Q_AVAIL + 2, v->avail);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    vioWrite(v, v->notify + v->notify_off * v->mult, 2, 0);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    used = v->ram[Q_USED + 2] | (v->ram[Q_USED + 3] << 8);
    if (used != v->avail)
        die("the virtio-iommu did not complete request %u", v->avail);
    return v->ram[Q_TAIL];
}

static void
vioAttach(Viommu *v, uint32_t domain, uint32_t endpoint)
{
    uint8_t req[24] = {1}; /* VIRTIO_IOMMU_T_ATTACH */
    uint8_t st;

    put32(req + 4, domain);
    put32(req + 8, endpoint);
    if ((st = vioRequest(v, req, sizeof(req))) != 0)
        die("ATTACH failed with status %u", st);
}

static void
vioMap(Viommu *v, uint32_t domain, uint64_t first, uint64_t last, uint64_t gpa)
{
    uint8_t req[36] = {3}; /* VIRTIO_IOMMU_T_MAP */
    uint8_t st;

    put32(req + 4, domain);
    put64(req + 8, first);
    put64(req + 16, last);
    put64(req + 24, gpa);
    put32(req + 32, 3); /* READ | WRITE */
    if ((st = vioRequest(v, req, sizeof(req))) != 0)
        die("MAP [0x%" G_GINT64_MODIFIER "x, 0x%" G_GINT64_MODIFIER
            "x] failed with status %u",
            first, last, st);
}

static long
vmlck(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/status", (int)pid);
    g_autofree char *status = NULL;
    const char *p;

    if (!g_file_get_contents(path, &status, NULL, NULL) ||
        !(p = strstr(status, "VmLck:")))
        die("cannot read '%s'", path);
    return strtol(p + 6, NULL, 10);
}

/* The relay's copy of the interposer's state: whether it names @bdf, how
 * many devices are open and mappings kept (all -1 without a state). */
static void
relayState(Qmp *q, const char *bdf, int *named, gint64 *open, gint64 *mappings)
{
    g_autoptr(JsonNode) ret = qmpCommand(q, "x-coco-query-relay", NULL);
    JsonObject *st = NULL;
    JsonArray *devices;
    guint i;

    *named = -1;
    *open = *mappings = -1;
    if (ret && JSON_NODE_HOLDS_OBJECT(ret))
        st = json_object_get_object_member(json_node_get_object(ret),
                                           "vfio-state");
    if (!st)
        return;
    devices = json_object_get_array_member(st, "devices");
    *named = 0;
    for (i = 0; devices && i < json_array_get_length(devices); i++)
        *named |= STREQ(json_array_get_string_element(devices, i), bdf);
    *open = json_object_get_int_member(st, "count");
    *mappings = json_object_get_int_member(st, "mappings");
}

int
main(int argc, char **argv)
{
    const char *qemuCoco;
    const char *qemu;
    const char *interposer;
    const char *bdf;
    const char *use;
    g_autofree char *conf = NULL;
    g_autofree char *confText = NULL;
    g_autofree char *chardev = NULL;
    g_autofree char *hostdev = NULL;
    g_autofree char *memobj = NULL;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    Qmp q = {0};
    Viommu v = {0};
    JsonObject *args;
    long before;
    long mapped;
    long after;
    int named = -1;
    int named_after = -1;
    gint64 nopen = -1;
    gint64 maps = -1;
    gint64 open_after = -1;
    gint64 maps_after = -1;
    int lfd;
    int ramfd;
    int logfd;
    pid_t pid;
    int status;
    guint i;

    if (argc != 6)
        die("usage: %s QEMU-COCO QEMU INTERPOSER BDF yes|no", argv[0]);
    qemuCoco = argv[1];
    qemu = argv[2];
    interposer = argv[3];
    bdf = argv[4];
    use = argv[5];

    conf = g_strdup_printf("/tmp/qemu-coco-%s.conf", use);
    /* The VFIO teardown alone: no write-log preload (it only serves a
     * confidential migration's dirty tracking). */
    confText = g_strdup_printf(
        "[qemu-coco]\nqemu = %s\nvfio_interposer = %s\nvfio_interposer_path = %s\nwrite_log = no\n",
        qemu, use, interposer);
    if (!g_file_set_contents(conf, confText, -1, NULL))
        die("cannot write '%s'", conf);
    g_setenv("QEMU_COCO_CONFIG", conf, TRUE);
    unlink(RAM_PATH);

    /* libvirt's monitor: a listening socket QEMU gets by descriptor */
    g_strlcpy(addr.sun_path, "/tmp/vfio-unplug-monitor.sock",
              sizeof(addr.sun_path));
    unlink(addr.sun_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(lfd, 1) < 0)
        die("cannot listen: %s", g_strerror(errno));
    chardev =
        g_strdup_printf("socket,id=charmonitor,fd=%d,server=on,wait=off", lfd);
    hostdev = g_strdup_printf("vfio-pci,host=%s,id=hostdev0,addr=%d,rombar=0",
                              bdf, HOSTDEV_SLOT);
    memobj = g_strdup_printf(
        "memory-backend-file,id=ram,size=%dM,mem-path=%s,share=on", RAM_MB,
        RAM_PATH);
    qemuLog = g_strdup_printf("/tmp/qemu-%s.log", use);
    logfd = open(qemuLog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    signal(SIGPIPE, SIG_IGN);

    pid = fork();
    if (pid == 0) {
        g_autofree char *mem = g_strdup_printf("%d", RAM_MB);
        const char *qargv[] = {qemuCoco,
                               "-name",
                               "guest=vfio-unplug",
                               "-machine",
                               "pc,accel=tcg,memory-backend=ram",
                               "-m",
                               mem,
                               "-object",
                               memobj,
                               "-S",
                               "-display",
                               "none",
                               "-nodefaults",
                               "-device",
                               "virtio-iommu-pci,addr=4",
                               "-device",
                               hostdev,
                               "-chardev",
                               chardev,
                               "-mon",
                               "chardev=charmonitor,id=monitor,mode=control",
                               NULL};

        dup2(logfd, STDERR_FILENO);
        execv(qemuCoco, (char **)qargv);
        _exit(127);
    }
    close(lfd);
    close(logfd);

    q.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    q.buf = g_string_new(NULL);
    q.events = g_ptr_array_new_with_free_func(g_free);
    if (connect(q.fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        die("cannot connect to the monitor: %s", g_strerror(errno));
    json_object_unref(qmpRead(&q)); /* the greeting */
    json_node_unref(qmpCommand(&q, "qmp_capabilities", NULL));
    printf("QEMU %d started through qemu-coco, vfio_interposer = %s\n",
           (int)pid, use);

    ramfd = open(RAM_PATH, O_RDWR | O_CLOEXEC);
    v.ram = ramfd < 0 ? MAP_FAILED
                      : mmap(NULL, (size_t)RAM_MB << 20, PROT_READ | PROT_WRITE,
                             MAP_SHARED, ramfd, 0);
    if (v.ram == MAP_FAILED)
        die("cannot map the guest RAM '%s'", RAM_PATH);
    v.q = &q;
    printf("pinned at start (all guest RAM, bypass): %ld kB\n", vmlck(pid));
    vioInit(&v);
    vioAttach(&v, 1, HOSTDEV_SLOT << 3);
    before = vmlck(pid);
    printf("pinned after ATTACH, before the guest maps: %ld kB\n", before);
    vioMap(&v, 1, 0x10000, 0x10000 + PG - 1, PAGE_LOW);
    vioMap(&v, 1, TOP - PG, TOP - 1, PAGE_BELOW);
    vioMap(&v, 1, TOP, G_MAXUINT64, PAGE_TOP);
    mapped = vmlck(pid);
    printf("pinned after MAP low, below-top and top pages: %ld kB\n", mapped);
    relayState(&q, bdf, &named, &nopen, &maps);
    printf("relay's VFIO state while mapped: names %s %s, %" G_GINT64_FORMAT
           " device(s) open, %" G_GINT64_FORMAT " mapping(s)\n",
           bdf, named == 1 ? "yes" : "no", nopen, maps);

    args = json_object_new();
    json_object_set_string_member(args, "id", "hostdev0");
    json_node_unref(qmpCommand(&q, "device_del", args));
    outl(&q, ACPI_PCIHP_SEL, 0);
    outl(&q, ACPI_PCIHP_EJ, 1U << HOSTDEV_SLOT);
    for (i = 0; i < 50; i++) {
        guint k;
        bool deleted = false;

        for (k = 0; k < q.events->len; k++)
            deleted |= STREQ(g_ptr_array_index(q.events, k), "DEVICE_DELETED");
        if (deleted)
            break;
        json_node_unref(qmpCommand(&q, "query-status", NULL));
        g_usleep(100000);
    }
    if (i == 50)
        die("no DEVICE_DELETED after device_del and the ACPI eject");
    after = vmlck(pid);
    printf("pinned after device_del: %ld kB\n", after);
    /* The detach's confirmation: the state holds nothing of the device
     * (the reports may trail DEVICE_DELETED by a few ms). */
    for (i = 0; i < 50; i++) {
        relayState(&q, bdf, &named_after, &open_after, &maps_after);
        if (named_after != 1 && open_after <= 0 && maps_after <= 0)
            break;
        g_usleep(100000);
    }
    printf(
        "relay's VFIO state after DEVICE_DELETED: names %s %s, %" G_GINT64_FORMAT
        " device(s) open, %" G_GINT64_FORMAT " mapping(s)\n",
        bdf, named_after == 1 ? "yes" : "no", open_after, maps_after);

    json_node_unref(qmpCommand(&q, "quit", NULL));
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    printLog(use);
    printf(
        "RESULT interposer=%s baseline=%ld mapped=%ld "
        "pinned-after-unplug=%ld named-before=%d mappings-before=%" G_GINT64_FORMAT
        " named-after=%d open-after=%" G_GINT64_FORMAT
        " mappings-after=%" G_GINT64_FORMAT "\n",
        use, before, mapped, after, named, maps, named_after, open_after,
        maps_after);
    return 0;
}
