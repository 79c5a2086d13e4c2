/*
 * cli.h: the command-line client (kvstore get, put, del, ls, watch, health,
 * status, volume-permissions, --help, --version).
 */

/* Run the command argv[1..argc); returns the exit status (usage: 2). */
int	cli_main(int argc, char **argv);
