# One benchmark run of lme4 or brms in a fresh R process (called by benchmarks/run.py).
#
# Rscript benchmarks/r_worker.R SYSTEM DATA.csv FORMULA FAMILY FACTORS DRAWS TUNE CHAINS CORES SEED OUT.tsv
#
# SYSTEM is lme4 or brms; FAMILY gaussian or poisson; FACTORS a comma-separated list of columns
# turned into factors. OUT.tsv gets lines "metric<TAB>name<TAB>value" and
# "param<TAB>name<TAB>mean<TAB>ess_bulk<TAB>rhat", parameters under mixedbayes' names
# (b[Days], sd_Subject[Intercept], cor_Subject[Intercept,Days], sigma).
args <- commandArgs(trailingOnly = TRUE)
system <- args[1]
data_csv <- args[2]
formula <- as.formula(args[3])
family <- args[4]
factors <- strsplit(args[5], ",", fixed = TRUE)[[1]]
draws <- as.integer(args[6])
tune <- as.integer(args[7])
chains <- as.integer(args[8])
cores <- as.integer(args[9])
seed <- as.integer(args[10])
out_path <- args[11]

peak_rss_mib <- function() {
  status <- readLines("/proc/self/status")
  line <- status[grepl("^VmHWM", status)]
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}
lines <- character(0)
metric <- function(name, value) {
  lines <<- c(lines, paste("metric", name, format(value, digits = 10), sep = "\t"))
}
param <- function(name, mean, ess = NA, rhat = NA) {
  lines <<- c(lines, paste("param", name, format(mean, digits = 10),
                           format(ess, digits = 10), format(rhat, digits = 10), sep = "\t"))
}
term_name <- function(x) ifelse(x == "(Intercept)", "Intercept", x)

if (system == "lme4") {
  suppressPackageStartupMessages(library(lme4))
} else {
  suppressPackageStartupMessages(library(brms))
}
d <- read.csv(data_csv, stringsAsFactors = FALSE)
for (col in factors) if (nzchar(col)) d[[col]] <- factor(d[[col]])
metric("rss_import_mib", peak_rss_mib())

if (system == "lme4") {
  t0 <- proc.time()[["elapsed"]]
  if (family == "gaussian") {
    m <- lmer(formula, data = d, REML = TRUE)
  } else {
    m <- glmer(formula, data = d, family = poisson())
  }
  total <- proc.time()[["elapsed"]] - t0
  metric("total_s", total)
  fe <- fixef(m)
  for (nm in names(fe)) param(paste0("b[", term_name(nm), "]"), fe[[nm]])
  vc <- as.data.frame(VarCorr(m))
  for (i in seq_len(nrow(vc))) {
    grp <- sub("\\.[0-9]+$", "", vc$grp[i])  # (x || g) gives groups g, g.1
    if (grp == "Residual") {
      param("sigma", vc$sdcor[i])
    } else if (is.na(vc$var2[i])) {
      param(paste0("sd_", grp, "[", term_name(vc$var1[i]), "]"), vc$sdcor[i])
    } else {
      param(paste0("cor_", grp, "[", term_name(vc$var1[i]), ",", term_name(vc$var2[i]), "]"),
            vc$sdcor[i])
    }
  }
} else {
  fam <- if (family == "gaussian") gaussian() else poisson()
  t0 <- proc.time()[["elapsed"]]
  fit <- brm(formula, data = d, family = fam, chains = chains, cores = min(cores, chains),
             iter = draws + tune, warmup = tune, seed = seed, refresh = 0, silent = 2)
  total <- proc.time()[["elapsed"]] - t0
  metric("total_s", total)
  # Sampling wall time: per-chain warmup + sampling seconds, chains run `cores` at a time.
  et <- rstan::get_elapsed_time(fit$fit)
  metric("sample_s", sum(et) / min(cores, chains))
  draws_df <- posterior::as_draws_df(fit)
  s <- posterior::summarise_draws(draws_df, "mean", "ess_bulk", "rhat")
  for (i in seq_len(nrow(s))) {
    v <- s$variable[i]
    name <- NA
    if (startsWith(v, "b_")) {
      name <- paste0("b[", substring(v, 3), "]")
    } else if (startsWith(v, "sd_")) {
      parts <- strsplit(substring(v, 4), "__", fixed = TRUE)[[1]]
      name <- paste0("sd_", parts[1], "[", parts[2], "]")
    } else if (startsWith(v, "cor_")) {
      parts <- strsplit(substring(v, 5), "__", fixed = TRUE)[[1]]
      name <- paste0("cor_", parts[1], "[", parts[2], ",", parts[3], "]")
    } else if (v == "sigma") {
      name <- "sigma"
    }
    if (!is.na(name)) param(name, s$mean[i], s$ess_bulk[i], s$rhat[i])
  }
  np <- nuts_params(fit)
  metric("divergences", sum(np$Value[np$Parameter == "divergent__"]))
}
metric("peak_rss_mib", peak_rss_mib())
writeLines(lines, out_path)
