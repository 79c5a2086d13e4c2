/*
 * noipv6: run a command as on a kernel without IPv6. A seccomp filter makes
 * socket(AF_INET6, ...) fail with EAFNOSUPPORT, as it does on a kernel built
 * or booted without IPv6 (ipv6.disable=1); the command is exec'd under it
 * and cannot remove it. A network namespace cannot stand in: with IPv6
 * disabled there, binding [::] still works. test.sh uses it to check that
 * the server falls back to 0.0.0.0.
 *
 * Usage: tests/noipv6 COMMAND [ARG...]. Exits 77 (skip) where it cannot
 * install the filter, 127 if COMMAND cannot be run.
 */

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EXIT_SKIP	77	/* automake's "skipped" */

#if defined(__x86_64__)
#define ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH	AUDIT_ARCH_AARCH64
#endif

int
main(int argc, char *argv[])
{
#ifdef ARCH
	/* Both targets are little-endian: args[0]'s low half comes first. */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, args[0])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_INET6, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };

	if (argc < 2) {
		fprintf(stderr, "usage: noipv6 COMMAND [ARG...]\n");
		return 2;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
		fprintf(stderr, "noipv6: seccomp: %s\n", strerror(errno));
		return EXIT_SKIP;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "noipv6: %s: %s\n", argv[1], strerror(errno));
	return 127;
#else
	(void)argc;
	(void)argv;
	fprintf(stderr, "noipv6: no seccomp filter for this architecture\n");
	return EXIT_SKIP;
#endif
}
