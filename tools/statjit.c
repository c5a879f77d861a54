/* statjit: fit linear mixed models (as lme4's lmer) and generalised linear
 * models (as R's glm) from a CSV file and an R formula.
 *
 *   statjit                       the demo: sleepstudy, Reaction ~ Days + (Days | Subject)
 *   statjit demo [--json]         the same
 *   statjit lmm DATA.csv 'FORMULA' [--ml] [--json]
 *   statjit glm DATA.csv 'FORMULA' [--family NAME] [--link NAME]
 *                                  [--weights COL] [--offset COL] [--json]
 *   statjit --help | --version
 *
 * Exit status 0 on success, 1 for a data, model or fit error, 2 for a usage
 * error; messages go to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "statjit.h"

static const char *const help_main =
    "Usage: statjit [COMMAND] [ARGS...]\n"
    "\n"
    "Fits statistical models from a CSV file and an R formula, compiled to\n"
    "native code.\n"
    "\n"
    "Commands:\n"
    "  lmm DATA.csv 'FORMULA' [--ml] [--json]\n"
    "        linear mixed model, as lme4's lmer (REML by default)\n"
    "  glm DATA.csv 'FORMULA' [--family NAME] [--link NAME]\n"
    "                         [--weights COL] [--offset COL] [--json]\n"
    "        generalised linear model, as R's glm (gaussian by default)\n"
    "  demo [--json]\n"
    "        fits the bundled sleepstudy data: Reaction ~ Days + (Days | Subject)\n"
    "        (also what 'statjit' with no arguments does)\n"
    "\n"
    "'statjit COMMAND --help' describes each command.  'statjit --version'\n"
    "prints the version.\n"
    "\n"
    "Exit status: 0 success, 1 data, model or fit error, 2 usage error.\n";

static const char *const help_lmm =
    "Usage: statjit lmm DATA.csv 'FORMULA' [--ml] [--json]\n"
    "\n"
    "Fits a linear mixed model by REML (or maximum likelihood with --ml) and\n"
    "prints a summary laid out as R's summary() of lme4's lmer fit.\n"
    "\n"
    "  DATA.csv   a CSV file with a header row; empty fields and NA are missing\n"
    "             and rows with a missing value in a variable the formula uses\n"
    "             are dropped (a note on stderr says how many)\n"
    "  FORMULA    an lme4 formula with at least one random-effect term, e.g.\n"
    "             'Reaction ~ Days + (Days | Subject)', '(1 | g1/g2)',\n"
    "             '(x || g)'; offset(...) terms are allowed\n"
    "  --ml       maximum likelihood instead of REML\n"
    "  --json     print one JSON object instead of the text summary: model,\n"
    "             criterion, reml_criterion or deviance, loglik, aic, bic, n,\n"
    "             fixed_effects, random_effects, correlations, converged,\n"
    "             iterations, singular\n"
    "  --help     this text\n"
    "\n"
    "Example:\n"
    "  statjit lmm sleepstudy.csv 'Reaction ~ Days + (Days | Subject)'\n"
    "\n"
    "Exit status: 0 success, 1 data, model or fit error, 2 usage error.\n";

static const char *const help_glm =
    "Usage: statjit glm DATA.csv 'FORMULA' [--family NAME] [--link NAME]\n"
    "                   [--weights COL] [--offset COL] [--json]\n"
    "\n"
    "Fits a generalised linear model by iteratively reweighted least squares\n"
    "and prints a summary laid out as R's summary() of a glm fit.\n"
    "\n"
    "  DATA.csv        a CSV file with a header row; rows with a missing value\n"
    "                  in a variable the model uses (weights and offset\n"
    "                  included) are dropped (a note on stderr says how many)\n"
    "  FORMULA         an R formula, e.g. 'breaks ~ wool + tension'; for the\n"
    "                  binomial family 'cbind(successes, failures) ~ ...' as in\n"
    "                  R, or a 0/1 or proportion response; offset(...) terms\n"
    "                  are added to the offset\n"
    "  --family NAME   gaussian (default), binomial, poisson, Gamma,\n"
    "                  inverse.gaussian, negative.binomial (any case)\n"
    "  --link NAME     identity, log, inverse, logit, probit, cauchit, cloglog,\n"
    "                  loglog, sqrt, 1/mu^2, power(p) as R's power(lambda), e.g.\n"
    "                  'power(1/3)' (default: the family's canonical link, as in R)\n"
    "  --weights COL   prior weights from column COL\n"
    "  --offset COL    an offset from column COL (added to offset() terms)\n"
    "  --json          print one JSON object instead of the text summary:\n"
    "                  model, family, link, coefficients, deviance,\n"
    "                  null_deviance, df_residual, df_null, aic, dispersion,\n"
    "                  loglik, n, rank, converged, iterations, message\n"
    "  --help          this text\n"
    "\n"
    "Examples:\n"
    "  statjit glm warpbreaks.csv 'breaks ~ wool + tension' --family poisson\n"
    "  statjit glm mtcars.csv 'mpg ~ wt + hp' --family Gamma --link log\n"
    "\n"
    "Exit status: 0 success, 1 data, model or fit error, 2 usage error.\n";

static const char *const help_demo =
    "Usage: statjit demo [--json]\n"
    "       statjit\n"
    "\n"
    "Fits the bundled sleepstudy data (lme4's: reaction times of 18 subjects\n"
    "over 10 days of sleep deprivation) with\n"
    "\n"
    "  statjit lmm sleepstudy.csv 'Reaction ~ Days + (Days | Subject)'\n"
    "\n"
    "and prints the summary.  The data is looked up in ../share/statjit/ next\n"
    "to the executable, then in the source tree's data/ directory.\n"
    "\n"
    "Exit status: 0 success, 1 data, model or fit error, 2 usage error.\n";

void cli_help(FILE *out, int cmd)
{
    const char *text = cmd == CLI_CMD_LMM    ? help_lmm
                       : cmd == CLI_CMD_GLM  ? help_glm
                       : cmd == CLI_CMD_DEMO ? help_demo
                                             : help_main;
    fputs(text, out);
}

static int run_demo(const cli_options *opt)
{
    char *path = cli_find_data("sleepstudy.csv");
    if (!path) {
        fprintf(stderr, "statjit demo: bundled data sleepstudy.csv not found (looked in "
                        "../share/statjit next to the executable and in the source tree)\n");
        return CLI_FAIL;
    }
    cli_options o = *opt;
    o.cmd = CLI_CMD_LMM;
    o.data = path;
    o.formula = "Reaction ~ Days + (Days | Subject)";
    if (!o.json)
        printf("statjit lmm %s '%s'\n\n", "sleepstudy.csv", o.formula);
    fflush(stdout);
    int status = cli_run_model(&o);
    free(path);
    return status;
}

int main(int argc, char **argv)
{
    cli_command cmd = CLI_CMD_DEMO;
    int first = 1;
    if (argc > 1) {
        const char *a = argv[1];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
            cli_help(stdout, -1);
            return CLI_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("statjit %d.%d.%d\n", SJ_VERSION_MAJOR, SJ_VERSION_MINOR, SJ_VERSION_PATCH);
            return CLI_OK;
        }
        if (strcmp(a, "lmm") == 0)
            cmd = CLI_CMD_LMM;
        else if (strcmp(a, "glm") == 0)
            cmd = CLI_CMD_GLM;
        else if (strcmp(a, "demo") == 0)
            cmd = CLI_CMD_DEMO;
        else if (a[0] == '-') {
            /* "statjit --json" runs the demo with that option. */
            cmd = CLI_CMD_DEMO;
            first = 0;
        } else {
            fprintf(stderr, "statjit: unknown command '%s' (commands: lmm, glm, demo)\n", a);
            fprintf(stderr, "Try 'statjit --help'.\n");
            return CLI_USAGE;
        }
        first += 1;
    }
    cli_options opt;
    int status = cli_parse(cmd, argc, argv, first, &opt);
    if (status != CLI_OK)
        return status;
    if (opt.help) {
        cli_help(stdout, (int)cmd);
        return CLI_OK;
    }
    if (cmd == CLI_CMD_DEMO)
        return run_demo(&opt);
    return cli_run_model(&opt);
}
