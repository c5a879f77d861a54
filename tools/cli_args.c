/* Option parsing of the statjit subcommands.
 *
 * GNU style: options may come before, between or after the two positional
 * arguments; "--name VALUE" and "--name=VALUE" are both accepted; "--" ends
 * the options (so a formula may start with '-').  Family and link names are
 * R's, matched without regard to case, '_' standing for '.' as well. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char *const cmd_names[] = {"lmm", "glm", "demo"};

static const char *const families[] = {"gaussian", "binomial", "poisson", "Gamma",
                                       "inverse.gaussian", "negative.binomial"};
static const char *const links[] = {"identity", "log",     "inverse", "logit", "probit",
                                    "cauchit",  "cloglog", "loglog",  "sqrt",  "1/mu^2",
                                    "power(p)"};

int cli_same_name(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '_' ? '.' : *a, y = *b == '_' ? '.' : *b;
        if (tolower((unsigned char)x) != tolower((unsigned char)y))
            return 0;
    }
    return *a == *b;
}

static int known(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cli_same_name(name, list[i]))
            return 1;
    return 0;
}

static int usage_error(cli_command cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "statjit %s: ", cmd_names[cmd]);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'statjit %s --help'.\n", cmd_names[cmd]);
    return CLI_USAGE;
}

static void list_names(char *buf, size_t size, const char *const *list, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", list[i]);
}

/* The options that take a value, and where they go. */
static const char **value_slot(cli_command cmd, cli_options *opt, const char *name)
{
    if (cmd != CLI_CMD_GLM)
        return NULL;
    if (strcmp(name, "--family") == 0)
        return &opt->family;
    if (strcmp(name, "--link") == 0)
        return &opt->link;
    if (strcmp(name, "--weights") == 0)
        return &opt->weights;
    if (strcmp(name, "--offset") == 0)
        return &opt->offset;
    return NULL;
}

int cli_parse(cli_command cmd, int argc, char **argv, int first, cli_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->cmd = cmd;
    const char *pos[2] = {NULL, NULL};
    int npos = 0, options_done = 0;
    int maxpos = cmd == CLI_CMD_DEMO ? 0 : 2;

    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                options_done = 1;
                continue;
            }
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                opt->help = 1;
                continue;
            }
            if (strcmp(a, "--json") == 0) {
                opt->json = 1;
                continue;
            }
            if (cmd == CLI_CMD_LMM && strcmp(a, "--ml") == 0) {
                opt->ml = 1;
                continue;
            }
            if (cmd == CLI_CMD_LMM && strcmp(a, "--reml") == 0) {
                opt->ml = 0;
                continue;
            }
            /* --name=value or --name value */
            char name[32];
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            if (len >= sizeof name)
                return usage_error(cmd, "unknown option '%s'", a);
            memcpy(name, a, len);
            name[len] = '\0';
            const char **slot = value_slot(cmd, opt, name);
            if (!slot)
                return usage_error(cmd, "unknown option '%s'", a);
            const char *value;
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return usage_error(cmd, "option '%s' needs a value", a);
            if (value[0] == '\0')
                return usage_error(cmd, "option '%s' needs a value", name);
            *slot = value;
            continue;
        }
        if (npos >= maxpos) {
            if (maxpos == 0)
                return usage_error(cmd, "unexpected argument '%s' (demo takes none)", a);
            return usage_error(cmd, "unexpected argument '%s' (give DATA.csv and one 'FORMULA')", a);
        }
        pos[npos++] = a;
    }
    if (opt->help)
        return CLI_OK;
    if (npos < maxpos)
        return usage_error(cmd, "%s", npos == 0 ? "missing DATA.csv and 'FORMULA'"
                                                : "missing 'FORMULA' after DATA.csv");
    opt->data = pos[0];
    opt->formula = pos[1];

    char buf[256];
    size_t nfam = sizeof families / sizeof *families, nlink = sizeof links / sizeof *links;
    if (opt->family && !known(opt->family, families, nfam)) {
        list_names(buf, sizeof buf, families, nfam);
        fprintf(stderr, "statjit glm: unknown family '%s' (families: %s)\n", opt->family, buf);
        fprintf(stderr, "Try 'statjit glm --help'.\n");
        return CLI_USAGE;
    }
    /* R's power(lambda) and a bare "power": the library checks the exponent */
    int power = opt->link != NULL;
    for (int k = 0; power && k < 5; k++)
        power = tolower((unsigned char)opt->link[k]) == "power"[k];
    power = power && (opt->link[5] == '\0' || opt->link[5] == '(');
    if (opt->link && !power && !known(opt->link, links, nlink)) {
        list_names(buf, sizeof buf, links, nlink);
        fprintf(stderr, "statjit glm: unknown link '%s' (links: %s)\n", opt->link, buf);
        fprintf(stderr, "Try 'statjit glm --help'.\n");
        return CLI_USAGE;
    }
    return CLI_OK;
}
