/**
 * report: what the step tells the user about a build: the JSON report and the outputs' values (report.ts), the job summary (summary.ts), the time per derivation (timing.ts), and
 * the Markdown escaping every summary's values go through (markdown.ts).
 * May import: base, inputs, nix, runner, builders.
 */

export { code, inline } from './markdown.js'
export {
  type BuildReport,
  type Checks,
  type FailoverEntry,
  makeReport,
  proofLine,
  type PushEntry,
  type ReportParts,
  writeReportFile
} from './report.js'
export { renderSummary } from './summary.js'
export { type DerivationTiming, type OffloadOverhead } from './timing.js'
