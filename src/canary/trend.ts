import { isRecord } from '../base/index.js'
import { createHash } from 'node:crypto'
/** One builder's figures from one canary run, as kept across scheduled runs. */
export interface CanarySample {
  /** When the run measured them, ISO 8601. */
  time: string
  /** `user@host:port`, e.g. `nixbuilder@10.0.0.5:22`. */
  builder: string
  connectMs?: number
  buildSeconds?: number
  uploadSeconds?: number
  downloadSeconds?: number
}

/** A figure of this run that is more than `factor` times its recent median: worth a look, not a failure. */
export interface TrendWarning {
  builder: string
  figure: TrendFigure
  current: number
  median: number
  factor: number
  message: string
}

export type TrendFigure = 'build' | 'upload' | 'download'

const FIGURES: readonly {
  figure: TrendFigure
  field: 'buildSeconds' | 'uploadSeconds' | 'downloadSeconds'
  verb: string
}[] = [
  { figure: 'build', field: 'buildSeconds', verb: 'build took' },
  { figure: 'upload', field: 'uploadSeconds', verb: 'upload took' },
  { figure: 'download', field: 'downloadSeconds', verb: 'download took' }
]

const NUMERIC_FIELDS = ['connectMs', 'buildSeconds', 'uploadSeconds', 'downloadSeconds'] as const

/** The middle value (mean of the two middle ones for an even count); NaN for no values. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const upper = sorted[middle] ?? Number.NaN
  return sorted.length % 2 === 1 ? upper : ((sorted[middle - 1] ?? Number.NaN) + upper) / 2
}

/** History plus this run's samples, keeping only the newest `keepPerBuilder` per builder, oldest first. */
export function appendHistory(
  history: CanarySample[],
  current: CanarySample[],
  keepPerBuilder = 20
): CanarySample[] {
  const byBuilder = new Map<string, CanarySample[]>()
  for (const sample of byTime([...history, ...current])) {
    const samples = byBuilder.get(sample.builder) ?? []
    samples.push(sample)
    byBuilder.set(sample.builder, samples)
  }
  const kept = [...byBuilder.values()].flatMap(samples =>
    keepPerBuilder > 0 ? samples.slice(-keepPerBuilder) : []
  )
  return byTime(kept)
}

/**
 * Flags each figure of `current` above `factor` × the median of that builder's same figure in `history` (the
 * earlier runs only). A builder needs `minSamples` earlier values of a figure before it is judged, so one slow
 * first run cannot set the bar.
 */
export function trendWarnings(
  history: CanarySample[],
  current: CanarySample[],
  factor: number,
  minSamples = 3
): TrendWarning[] {
  if (!(factor > 0)) return []
  const warnings: TrendWarning[] = []
  for (const sample of current) {
    const earlier = history.filter(past => past.builder === sample.builder)
    for (const { figure, field, verb } of FIGURES) {
      const value = sample[field]
      if (value === undefined || !Number.isFinite(value)) continue
      const past = earlier.flatMap(entry => {
        const pastValue = entry[field]
        return pastValue !== undefined && Number.isFinite(pastValue) ? [pastValue] : []
      })
      if (past.length < Math.max(1, minSamples)) continue
      const typical = median(past)
      // A median of 0 s (a copy that had nothing to do) would flag any later non-zero time: not a trend.
      if (!(typical > 0) || value <= factor * typical) continue
      warnings.push({
        builder: sample.builder,
        figure,
        current: value,
        median: typical,
        factor,
        message:
          `${sample.builder}: ${verb} ${seconds(value)}, ${(value / typical).toFixed(1)}× its median of ` +
          `${seconds(typical)} over the last ${past.length} runs (trend-factor ${factor})`
      })
    }
  }
  return warnings
}

/**
 * The samples in a saved history file. Anything that is not a well-formed sample is dropped rather than trusted:
 * the file comes back from a cache that an older (or newer) version of the action may have written.
 */
export function parseHistory(json: string): CanarySample[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(json)
  } catch {
    return []
  }
  if (!Array.isArray(parsed)) return []
  return parsed.flatMap(item => {
    const sample = toSample(item)
    return sample === undefined ? [] : [sample]
  })
}

function toSample(item: unknown): CanarySample | undefined {
  if (!isRecord(item)) return undefined
  const { time, builder } = item
  if (typeof time !== 'string' || Number.isNaN(Date.parse(time))) return undefined
  if (typeof builder !== 'string' || builder === '') return undefined
  const sample: CanarySample = { time, builder }
  for (const field of NUMERIC_FIELDS) {
    const value = item[field]
    if (value === undefined) continue
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return undefined
    sample[field] = value
  }
  return sample
}

/** Oldest first; samples of the same instant keep their order. */
function byTime(samples: CanarySample[]): CanarySample[] {
  return [...samples].sort((a, b) => Date.parse(a.time) - Date.parse(b.time))
}

function seconds(value: number): string {
  // Figures for a builder on a LAN are milliseconds: a tenth of a second would round them all to 0.0 s.
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(1)} s`
}

/** The history's identity: the set of builders it measures, so a changed fleet starts a fresh trend. */
export function historyId(builders: string[]): string {
  return createHash('sha256').update(builders.join('\n')).digest('hex').slice(0, 12)
}
