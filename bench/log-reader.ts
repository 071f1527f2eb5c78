/**
 * How fast the action reads a very large internal-json log, against a plain line count of the same file.
 *
 *   npx tsx bench/log-reader.ts [--size-mb 1024] [--runs 3] [--log existing.log]
 *
 * Generates the log once (streamed to a temp file, deleted at the end), then for each run times, each in a fresh child
 * process so that peak RSS is that run's: a line count (0x0a bytes through a read stream), the action's reader (read
 * stream → LineSplitter → NixLogReader with a printer that prints nothing) and, for reference, `wc -l`. Prints medians.
 * Exits non-zero only on errors: the machine is noisy, so there is no threshold here; compare the ratios.
 */
import { fork, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { NixLogReader } from '../src/nix/ledger.js'
import { LineSplitter } from '../src/nix/nix-log.js'
import { writeNixLog } from './nix-log-generator.js'

type Mode = 'count' | 'reader'

/** One run of one mode, measured inside its own process. */
interface Measurement {
  mode: Mode | 'wc -l'
  seconds: number
  /** RSS once the modules are loaded, before reading: the floor under the peak (bytes); 0 for `wc -l`. */
  startRss: number
  /** Highest `process.memoryUsage().rss` seen, sampled every 50 ms (bytes); 0 for `wc -l`. */
  sampledPeakRss: number
  /** `process.resourceUsage().maxRSS` at the end (bytes); 0 for `wc -l`. */
  maxRss: number
  lines: number
  /** What the reader found, hashed without times: the same log must always give the same digest. */
  digest: string
  summary: string
}

const MB = 1e6
const MIB = 1024 * 1024
const SAMPLE_MS = 50

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '1024' },
    runs: { type: 'string', default: '3' },
    log: { type: 'string' },
    // Internal: the mode and log of one measurement in a child process.
    child: { type: 'string' },
    file: { type: 'string' }
  }
})

if (values.child !== undefined) {
  const mode = values.child
  if ((mode !== 'count' && mode !== 'reader') || values.file === undefined)
    throw new Error(`bad --child ${mode}`)
  const measurement = await measure(mode, values.file)
  process.send?.(measurement)
} else {
  await main()
}

async function main(): Promise<void> {
  const runs = positive('runs', values.runs)
  let file = values.log
  let directory: string | undefined
  try {
    if (file === undefined) {
      const sizeMb = positive('size-mb', values['size-mb'])
      directory = mkdtempSync(join(tmpdir(), 'nix-offload-bench-'))
      file = join(directory, 'nix-build.log')
      const started = performance.now()
      const mix = writeNixLog(file, sizeMb * MIB)
      const seconds = (performance.now() - started) / 1000
      console.log(
        `generated ${file}: ${(mix.bytes / MB).toFixed(0)} MB, ${mix.lines} lines, ${mix.derivations} derivations ` +
          `in ${seconds.toFixed(1)} s`
      )
      console.log('| line kind | lines | % lines | % bytes |\n| --- | ---: | ---: | ---: |')
      for (const [kind, counts] of [...mix.kinds].sort((a, b) => b[1].bytes - a[1].bytes)) {
        const lineShare = ((100 * counts.lines) / mix.lines).toFixed(1)
        const byteShare = ((100 * counts.bytes) / mix.bytes).toFixed(1)
        console.log(`| ${kind} | ${counts.lines} | ${lineShare} | ${byteShare} |`)
      }
    }
    const bytes = statSync(file).size
    const results: Measurement[] = []
    for (let run = 1; run <= runs; run++) {
      for (const mode of ['count', 'reader'] as const) {
        const measurement = await inChild(mode, file)
        results.push(measurement)
        console.log(`run ${run} ${describe(measurement, bytes)}; ${measurement.summary}`)
      }
      const wc = lineCountWithWc(file)
      results.push(wc)
      console.log(`run ${run} ${describe(wc, bytes)}`)
    }
    const digests = new Set(results.filter(result => result.mode === 'reader').map(result => result.digest))
    if (digests.size !== 1)
      throw new Error(`the reader gave different results on the same log: ${[...digests]}`)
    printTable(results, bytes, runs)
  } finally {
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
  }
}

function positive(name: string, text: string | undefined): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer, got ${text}`)
  return value
}

function inChild(mode: Mode, file: string): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = fork(import.meta.filename, ['--child', mode, '--file', file], { stdio: 'inherit' })
    let measurement: Measurement | undefined
    child.on('message', message => {
      if (isMeasurement(message)) measurement = message
    })
    child.on('error', reject)
    child.on('exit', code => {
      if (code === 0 && measurement !== undefined) resolve(measurement)
      else reject(new Error(`the ${mode} child exited with ${code} without a measurement`))
    })
  })
}

function isMeasurement(message: unknown): message is Measurement {
  return typeof message === 'object' && message !== null && 'seconds' in message && 'digest' in message
}

function lineCountWithWc(file: string): Measurement {
  const started = performance.now()
  const wc = spawnSync('wc', ['-l', file], { encoding: 'utf8' })
  const seconds = (performance.now() - started) / 1000
  if (wc.status !== 0) throw new Error(`wc -l failed: ${wc.stderr}`)
  const lines = Number.parseInt(wc.stdout, 10)
  return { mode: 'wc -l', seconds, startRss: 0, sampledPeakRss: 0, maxRss: 0, lines, digest: '', summary: '' }
}

async function measure(mode: Mode, file: string): Promise<Measurement> {
  const startRss = process.memoryUsage().rss
  let peak = startRss
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), SAMPLE_MS)
  const started = performance.now()
  let lines = 0
  let digest = ''
  let summary = ''
  if (mode === 'count') {
    await eachChunk(file, chunk => {
      for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) lines++
    })
  } else {
    // As src/nix/build.ts drives it, with a printer that prints nothing.
    const reader = new NixLogReader(() => undefined)
    const splitter = new LineSplitter(line => {
      lines++
      reader.readLine(line)
    })
    await eachChunk(file, chunk => splitter.push(chunk))
    splitter.end()
    ;({ digest, summary } = outcome(reader))
  }
  const seconds = (performance.now() - started) / 1000
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  const maxRss = process.resourceUsage().maxRSS * 1024
  return { mode, seconds, startRss, sampledPeakRss: peak, maxRss, lines, digest, summary }
}

/** Chunks as `data` events, like the nix process's stderr in src/base/process.ts (64 KiB, a pipe's size). */
function eachChunk(file: string, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = createReadStream(file, { highWaterMark: 64 * 1024 })
    stream.on('data', chunk => onChunk(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)))
    stream.on('error', reject)
    stream.on('end', resolve)
  })
}

function outcome(reader: NixLogReader): { digest: string; summary: string } {
  const builds = reader.ledger.records()
  const copies = reader.copyLedger.records()
  const hash = createHash('sha256')
  for (const build of builds)
    hash.update(`${build.drvPath} ${build.machine} ${build.status} ${build.attempts}\n`)
  for (const copy of copies) hash.update(`${copy.path} ${copy.from} ${copy.to} ${copy.end !== undefined}\n`)
  for (const message of reader.messages) hash.update(`${message}\n`)
  for (const [drvPath, lines] of reader.lastLines) hash.update(`${drvPath}\n${lines.join('\n')}\n`)
  const remote = builds.filter(build => build.machine !== '').length
  const failed = builds.filter(build => build.status === 'failed').length
  const summary =
    `${builds.length} builds (${remote} remote, ${failed} failed), ${copies.length} copies, ` +
    `${reader.messages.length} messages, digest ${hash.copy().digest('hex').slice(0, 12)}`
  return { digest: hash.digest('hex'), summary }
}

function describe(measurement: Measurement, bytes: number): string {
  const rate = (bytes / MB / measurement.seconds).toFixed(0)
  const memory =
    measurement.maxRss === 0
      ? ''
      : `, RSS ${mib(measurement.startRss)} MiB at start, peak ${mib(measurement.sampledPeakRss)} MiB sampled / ` +
        `${mib(measurement.maxRss)} MiB maxRSS`
  return `${measurement.mode}: ${measurement.lines} lines in ${measurement.seconds.toFixed(2)} s, ${rate} MB/s${memory}`
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(0)
}

function median(numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

function printTable(results: Measurement[], bytes: number, runs: number): void {
  const rows = new Map<string, { seconds: number; rate: number }>()
  console.log(
    `\nmedians of ${runs} runs, ${(bytes / MB).toFixed(0)} MB (MB = 10^6 bytes, MiB = 2^20 bytes)\n`
  )
  console.log('| measure | MB | s | MB/s | RSS at start MiB | peak RSS MiB (sampled) | maxRSS MiB |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  const names: Record<Measurement['mode'], string> = {
    count: 'line count (Node read stream)',
    reader: 'log reader (LineSplitter → NixLogReader)',
    'wc -l': '`wc -l` (reference)'
  }
  for (const mode of ['count', 'reader', 'wc -l'] as const) {
    const mine = results.filter(result => result.mode === mode)
    const seconds = median(mine.map(result => result.seconds))
    const rate = median(mine.map(result => bytes / MB / result.seconds))
    rows.set(mode, { seconds, rate })
    const memory = (pick: (result: Measurement) => number) =>
      mode === 'wc -l' ? '–' : mib(median(mine.map(pick)))
    const row = [
      names[mode],
      (bytes / MB).toFixed(0),
      seconds.toFixed(2),
      rate.toFixed(0),
      memory(result => result.startRss),
      memory(result => result.sampledPeakRss),
      memory(result => result.maxRss)
    ]
    console.log(`| ${row.join(' | ')} |`)
  }
  const reader = rows.get('reader')?.rate ?? 0
  const count = rows.get('count')?.rate ?? 1
  const wc = rows.get('wc -l')?.rate ?? 1
  console.log(
    `\nreader / line count: ${(reader / count).toFixed(2)}; reader / wc -l: ${(reader / wc).toFixed(2)}`
  )
}
