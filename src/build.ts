import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { BuildLedger, type BuildRecord, CopyLedger, type CopyRecord } from './ledger.js'
import {
  ActivityType,
  derivationName,
  LEVEL_INFO,
  LEVEL_WARN,
  LineSplitter,
  parseNixLine,
  ResultType,
  stripAnsi
} from './nix-log.js'
import { NIX_FEATURES } from './probe.js'
import { runCommand } from './process.js'
import type { Settings } from './settings.js'

export interface BuildOutcome {
  exitCode: number
  builds: BuildRecord[]
  outPaths: string[]
  /** Nix's error and warning messages, without colours: what the diagnosis reads. */
  messages: string[]
  /** The last log lines of each derivation, to show with a failure. */
  lastLines: Map<string, string[]>
  /** Store paths copied to or from builders, with their times. */
  copies: CopyRecord[]
}

const KEPT_LOG_LINES = 10

/** The `nix build` command line: internal-json for the proof, `--json` for the out paths (2.8 lacks --print-out-paths). */
export function buildArguments(settings: Settings): string[] {
  // The action's options come after the user's `args`, so a later duplicate cannot switch off the proof.
  const args = [...NIX_FEATURES, 'build', ...settings.args, '--log-format', 'internal-json', '--json']
  args.push('--max-jobs', String(settings.localJobs))
  if (settings.rebuild) args.push('--rebuild')
  // A `result` link is a GC root left in the workspace; only make one when the user asks for it.
  const linkOption = settings.args.some(
    arg => /^(-o|--out-link|--no-link)$/.test(arg) || arg.startsWith('--out-link=')
  )
  if (!linkOption) args.push('--no-link')
  return [...args, ...settings.installables]
}

/** Runs the build, streaming each derivation's log lines live as `name> line`, and keeps the ledger. */
export async function runBuild(settings: Settings, env: NodeJS.ProcessEnv): Promise<BuildOutcome> {
  const ledger = new BuildLedger()
  const copyLedger = new CopyLedger()
  const messages: string[] = []
  const lastLines = new Map<string, string[]>()
  const splitter = new LineSplitter(line => readLine(line))
  // Build logs come from the builder: keep a line like "::add-mask::" or "::error::" in them from acting on the runner.
  const resumeToken = randomBytes(16).toString('hex')
  core.info(`::stop-commands::${resumeToken}`)
  let result
  try {
    result = await runCommand('nix', buildArguments(settings), {
      env,
      onStderr: chunk => splitter.push(chunk)
    })
    splitter.end()
  } finally {
    core.info(`::${resumeToken}::`)
  }
  return {
    exitCode: result.code,
    builds: ledger.records(),
    outPaths: parseOutPaths(result.stdout.toString()),
    messages,
    lastLines,
    copies: copyLedger.records()
  }

  function readLine(line: string): void {
    const event = parseNixLine(line)
    if (event === undefined) {
      if (line.trim() !== '') core.info(line)
      return
    }
    const now = Date.now()
    switch (event.action) {
      case 'start': {
        let relayed = false
        if (event.type === ActivityType.Build) {
          const [drvPath, machine] = event.fields
          if (typeof drvPath === 'string') {
            relayed = ledger.startBuild(event.id, drvPath, String(machine ?? ''), now)
          }
        }
        if (event.type === ActivityType.CopyPath) {
          const [path, from, to] = event.fields
          if (typeof path === 'string')
            copyLedger.startCopy(event.id, path, String(from ?? ''), String(to ?? ''), now)
        }
        if (!relayed && event.level <= LEVEL_INFO && event.text !== '') core.info(event.text)
        return
      }
      case 'stop':
        ledger.stop(event.id, now)
        copyLedger.stop(event.id, now)
        return
      case 'result':
        if (event.type === ResultType.BuildLogLine || event.type === ResultType.PostBuildLogLine) {
          const drvPath = ledger.derivationOf(event.id)
          const text = String(event.fields[0] ?? '')
          core.info(drvPath === undefined ? text : `${derivationName(drvPath)}> ${text}`)
          if (drvPath !== undefined) keepLine(drvPath, text)
        }
        return
      case 'msg':
        if (event.level <= LEVEL_INFO) core.info(event.msg)
        // Warnings too: without a daemon, the build hook reports "Failed to find a machine" as one.
        if (event.level <= LEVEL_WARN) {
          const plain = stripAnsi(event.msg)
          messages.push(plain)
          if (event.level === 0) for (const drvPath of failedDerivations(plain)) ledger.markFailed(drvPath)
        }
        return
    }
  }

  function keepLine(drvPath: string, line: string): void {
    const lines = lastLines.get(drvPath) ?? []
    lines.push(line)
    if (lines.length > KEPT_LOG_LINES) lines.shift()
    lastLines.set(drvPath, lines)
  }
}

/**
 * Derivations an error message says failed: "builder for '…' failed", "build of '…' on '…' failed" (Nix ≤ 2.29),
 * "Cannot build '…'." followed by a "Reason:" line (2.30+).
 */
export function failedDerivations(message: string): string[] {
  const pattern =
    /(?:builder for '(\/[^']+\.drv)'|build of '(\/[^']+\.drv)'(?: on '[^']*')?) failed|Cannot build '(\/[^']+\.drv)'/g
  const paths = [...message.matchAll(pattern)].map(match => match[1] ?? match[2] ?? match[3] ?? '')
  return [...new Set(paths)]
}

/** `nix build --json` stdout: `[{"drvPath": …, "outputs": {"out": "/nix/store/…"}}]`. */
export function parseOutPaths(stdout: string): string[] {
  if (stdout.trim() === '') return []
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    return []
  }
  if (!Array.isArray(parsed)) return []
  const paths: string[] = []
  for (const item of parsed) {
    const outputs: unknown =
      typeof item === 'object' && item !== null && 'outputs' in item ? item.outputs : undefined
    if (typeof outputs !== 'object' || outputs === null) continue
    for (const path of Object.values(outputs)) if (typeof path === 'string') paths.push(path)
  }
  return paths
}
