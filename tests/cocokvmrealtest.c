/*
 * cocokvmrealtest.c: the "kvm" backend on a real KVM VM
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Creates a VM and a vCPU in this process (COCO_KVM_DEVICE or /dev/kvm;
 * exit 77 with the reason where they cannot be created) and drives the
 * backend, internal and public API, on those descriptors: on a kernel
 * without the RFC the probe says "absent" and the backend "this kernel
 * does not implement KVM_CAP_MIGRATION". The same descriptors used from
 * another process, a forked child and a process that took them with
 * pidfd_getfd() (as a root agent would from QEMU), get KVM's EIO, which
 * the backend names: the descriptor belongs to another process.
 */

#include "internal.h"
#include "firmware/cocokvm.h"
#include "libvirt-coco/coco-kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int vmFd = -1;
static int vcpuFd = -1;

static void
assertNotImplemented(const GError *err)
{
    g_assert_error(err, COCO_ERROR, COCO_ERROR_NOT_SUPPORTED);
    g_assert_nonnull(strstr(
        err->message, "this kernel does not implement KVM_CAP_MIGRATION"));
}

static void
assertForeign(const GError *err)
{
    g_assert_error(err, COCO_ERROR, COCO_ERROR_INVALID_ARG);
    g_assert_nonnull(strstr(err->message, "belongs to another process"));
    g_assert_nonnull(
        strstr(err->message, "must be issued from the VMM's own process"));
}

/* In our own process: no RFC in this kernel, said as such. */
static void
testOwnProcess(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(CocoKvmMigration) mig = NULL;
    CocoFirmwareCaps caps;
    CocoKvmConfig cfg;
    bool supported = true;

    cocoKvmConfigInit(&cfg);
    g_assert_cmpint(cocoKvmProbe(vmFd, NULL, &cfg, &caps, NULL, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(caps.migration);
    g_assert_null(cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, vmFd, &vcpuFd,
                                     1, NULL, &cfg, &err));
    assertNotImplemented(err);
    g_clear_error(&err);

    g_assert_cmpint(cocoKvmMigrationProbe(vmFd, &supported, &err), ==, 0);
    g_assert_no_error(err);
    g_assert_false(supported);
    mig = cocoKvmMigrationNew(COCO_KVM_MIGRATION_DESTINATION, vmFd, &vcpuFd, 1,
                              &err);
    g_assert_null(mig);
    assertNotImplemented(err);
}

/* The checks of another process; exit status 0 when they hold. */
static G_NORETURN void
foreignChecks(int vm, int vcpu)
{
    g_autoptr(GError) err = NULL;
    CocoFirmwareCaps caps;
    CocoKvmConfig cfg;
    bool supported;

    cocoKvmConfigInit(&cfg);
    if (cocoKvmProbe(vm, NULL, &cfg, &caps, NULL, &err) == 0)
        _exit(2);
    assertForeign(err);
    g_clear_error(&err);
    if (cocoKvmFirmwareNew(COCO_FIRMWARE_ROLE_SOURCE, vm, &vcpu, 1, NULL, &cfg,
                           &err))
        _exit(3);
    assertForeign(err);
    g_clear_error(&err);
    if (cocoKvmMigrationProbe(vm, &supported, &err) == 0)
        _exit(4);
    assertForeign(err);
    _exit(0);
}

static void
waitOk(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        g_assert_cmpint(errno, ==, EINTR);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

/* A forked child inherits the descriptors but not the VM's mm. */
static void
testForkedChild(void)
{
    pid_t pid = fork();

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
        foreignChecks(vmFd, vcpuFd);
    waitOk(pid);
}

/* A process that takes the VM descriptor of another one with
 * pidfd_getfd(), as a root agent could take QEMU's. */
static void
testPidfdGetfd(void)
{
    int ready[2];
    int done[2];
    pid_t pid;
    int pidfd;
    int vm;
    int vcpu;
    int fds[2];
    char c = 0;

    g_assert_cmpint(pipe2(ready, O_CLOEXEC), ==, 0);
    g_assert_cmpint(pipe2(done, O_CLOEXEC), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        /* the "VMM": its own VM, then it waits */
        int kvm = open(g_getenv("COCO_KVM_DEVICE") ? g_getenv("COCO_KVM_DEVICE")
                                                   : "/dev/kvm",
                       O_RDWR | O_CLOEXEC);

        fds[0] = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
        fds[1] = fds[0] < 0 ? -1 : ioctl(fds[0], KVM_CREATE_VCPU, 0);
        if (write(ready[1], fds, sizeof(fds)) != sizeof(fds) ||
            read(done[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    g_assert_cmpint(read(ready[0], fds, sizeof(fds)), ==, sizeof(fds));
    g_assert_cmpint(fds[0], >=, 0);
    g_assert_cmpint(fds[1], >=, 0);
    pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    g_assert_cmpint(pidfd, >=, 0);
    vm = (int)syscall(SYS_pidfd_getfd, pidfd, fds[0], 0);
    vcpu = (int)syscall(SYS_pidfd_getfd, pidfd, fds[1], 0);
    if (vm < 0 || vcpu < 0) {
        g_test_skip("pidfd_getfd() is not allowed here");
    } else {
        pid_t checker = fork();

        g_assert_cmpint(checker, >=, 0);
        if (checker == 0)
            foreignChecks(vm, vcpu);
        waitOk(checker);
        close(vm);
        close(vcpu);
    }
    g_assert_cmpint(write(done[1], &c, 1), ==, 1);
    waitOk(pid);
    close(pidfd);
    close(ready[0]);
    close(ready[1]);
    close(done[0]);
    close(done[1]);
}

int
main(int argc, char **argv)
{
    const char *dev = g_getenv("COCO_KVM_DEVICE");
    int kvm;
    int ret;

    if (!dev)
        dev = "/dev/kvm";
    if ((kvm = open(dev, O_RDWR | O_CLOEXEC)) < 0) {
        printf("SKIP: cannot open '%s': %s\n", dev, g_strerror(errno));
        return 77;
    }
    if ((vmFd = ioctl(kvm, KVM_CREATE_VM, 0)) < 0) {
        printf("SKIP: KVM_CREATE_VM on '%s' failed: %s\n", dev,
               g_strerror(errno));
        return 77;
    }
    if ((vcpuFd = ioctl(vmFd, KVM_CREATE_VCPU, 0)) < 0) {
        printf("SKIP: KVM_CREATE_VCPU failed: %s\n", g_strerror(errno));
        return 77;
    }
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm/real/own-process", testOwnProcess);
    g_test_add_func("/kvm/real/forked-child", testForkedChild);
    g_test_add_func("/kvm/real/pidfd-getfd", testPidfdGetfd);
    ret = g_test_run();
    close(vcpuFd);
    close(vmFd);
    close(kvm);
    return ret;
}
