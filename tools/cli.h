/* The statjit command: shared declarations of its parts.
 *
 *   statjit.c       main, subcommand dispatch, help texts
 *   cli_args.c      option parsing
 *   cli_model.c     CSV + formula -> design -> the lmm and glm fits
 *   cli_progress.c  the progress line on a terminal's stderr
 *
 * Exit statuses: 0 success, 1 a data, model or fit error, 2 a usage error.
 * Every error is one message on stderr, "statjit: ..." (formula errors keep
 * their position and caret lines). */
#ifndef SJ_CLI_H
#define SJ_CLI_H

#include <stdio.h>

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef enum cli_command { CLI_CMD_LMM, CLI_CMD_GLM, CLI_CMD_DEMO } cli_command;

typedef struct cli_options {
    cli_command cmd;
    const char *data;    /* DATA.csv */
    const char *formula; /* 'FORMULA' */
    int ml;              /* lmm: --ml (maximum likelihood instead of REML) */
    int json;            /* --json */
    const char *family;  /* glm: --family (NULL: gaussian) */
    const char *link;    /* glm: --link (NULL: the family's canonical link) */
    const char *weights; /* glm: --weights COL */
    const char *offset;  /* glm: --offset COL */
    int help;            /* --help / -h given: print the command's help, exit 0 */
} cli_options;

/* Parses argv[first..argc-1] (the arguments after the subcommand) for cmd.
 * On a usage error prints "statjit CMD: ..." and a hint to stderr and
 * returns CLI_USAGE; else CLI_OK (opt->help set when --help was asked). */
int cli_parse(cli_command cmd, int argc, char **argv, int first, cli_options *opt);

/* Family and link names as the library matches them: case-insensitive, '_'
 * and '.' equal ("Gamma" = "gamma", "inverse_gaussian" = "inverse.gaussian"). */
int cli_same_name(const char *a, const char *b);

/* The help text of a subcommand (or of statjit itself for cmd < 0). */
void cli_help(FILE *out, int cmd);

/* Runs the fit described by opt: reads the CSV, builds the design, fits and
 * prints the summary (text or JSON) on stdout.  Returns an exit status. */
int cli_run_model(const cli_options *opt);

/* Path of the bundled demo data file name (e.g. "sleepstudy.csv"), found
 * next to the executable (../share/statjit/), else in the source tree's
 * data/ directory; NULL when neither exists.  The result is malloc'd. */
char *cli_find_data(const char *name);

/* Progress line on stderr while a long fit runs: only when stderr is a
 * terminal.  cli_progress_start returns a handle (NULL when nothing is
 * shown); cli_progress_stop erases the line and frees it.  The line says
 * what runs and the elapsed time; it never pretends to know how much is
 * left (the fits report no progress of their own). */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_start(const char *what);
void cli_progress_stop(cli_progress *p);

#endif
