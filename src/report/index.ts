/**
 * report: what the step tells the user about a build: the JSON report, the outputs' values and the job summary, and
 * the Markdown escaping every summary's values go through (markdown.ts).
 * May import: base, inputs, nix, runner, builders.
 */

export { code, inline } from './markdown.js'
export { type BuildReport, type Checks, makeReport, renderSummary, writeReportFile } from './report.js'
