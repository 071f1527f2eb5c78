/**
 * canary: the canary action (canary/action.yml), the scheduled health check of every builder, a second path through
 * the same stages: its derivations (canary-plan.ts), the run (canary.ts), the verdict and summary (canary-verdict.ts),
 * and trends over earlier runs kept in the Actions cache (trend.ts, history-cache.ts; @actions/cache loads only here).
 * May import: base, inputs, nix, runner, builders, report.
 */

export { canary } from './canary.js'
