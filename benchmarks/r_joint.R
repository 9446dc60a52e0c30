# rstanarm's stan_jm on the pbc_joint model (called by benchmarks/joint.py).
#
# Rscript benchmarks/r_joint.R PBCSEQ.csv
#
# Log bilirubin with a random intercept and slope (per year) by sex, and death (status 2;
# transplant censored) with a B-spline baseline reading the current value ("etavalue");
# 4 chains x 1000 draws after 1000 warm-up. Prints one line
# RESULT {"fit": seconds, "min_ess": smallest bulk ESS of the population parameters}.
args <- commandArgs(trailingOnly = TRUE)
suppressMessages({
  library(rstanarm)
  library(survival)
})
d <- read.csv(args[1])
d$year <- d$day / 365.25
d$sex <- relevel(factor(d$sex), ref = "m")
d <- d[order(d$id, d$year), ]
surv <- d[!duplicated(d$id), ]
surv$years <- surv$futime / 365.25
surv$death <- as.integer(surv$status == 2)
t0 <- Sys.time()
fit <- stan_jm(
  formulaLong = log(bili) ~ year * sex + (year | id),
  dataLong = d,
  formulaEvent = Surv(years, death) ~ sex,
  dataEvent = surv,
  time_var = "year",
  assoc = "etavalue",
  basehaz = "bs",
  chains = 4, cores = 2, iter = 2000, warmup = 1000, seed = 20261202, refresh = 0
)
wall <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
s <- summary(fit)
keep <- !grepl("^b\\[", rownames(s)) & !grepl("^(mean_PPD|log-posterior)", rownames(s))
ess <- min(s[keep, "n_eff"], na.rm = TRUE)
cat(sprintf("RESULT {\"fit\": %.3f, \"min_ess\": %.1f}\n", wall, ess))
