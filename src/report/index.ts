/**
 * report: what the step tells the user about a build: the JSON report, the outputs' values and the job summary.
 * May import: base, inputs, nix, runner, builders.
 */

export { type BuildReport, type Checks, makeReport, renderSummary, writeReportFile } from './report.js'
