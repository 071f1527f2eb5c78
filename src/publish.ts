import * as core from '@actions/core'
import { writeSummary } from './base/index.js'
import { Output, type Settings } from './inputs/index.js'
import { type BuildReport, renderSummary, writeReportFile } from './report/index.js'

/** Sets every output and writes the report file and the job summary. */
export async function publish(report: BuildReport, settings: Settings, built: boolean): Promise<void> {
  const reportFile = writeReportFile(report)
  core.setOutput(Output.OutPaths, report.outPaths.join('\n'))
  core.setOutput(Output.RemoteBuilds, String(report.remoteBuilds))
  core.setOutput(Output.LocalBuilds, String(report.localBuilds))
  core.setOutput(Output.FailedBuilds, String(report.failedBuilds))
  core.setOutput(Output.Confirmed, String(report.confirmed))
  core.setOutput(Output.BuildersHealthy, String(report.buildersHealthy))
  core.setOutput(Output.Report, reportFile)
  if (settings.summary && process.env.GITHUB_STEP_SUMMARY) {
    await writeSummary(renderSummary(report, built))
  }
}
