/**
 * The figures of bench/nixpkgs-shaped.ts: one table per phase (link × warm or cold), then the targets as
 * ratios measured in the same invocation. Nothing here fails on a target.
 */
import { median } from './seed.js'

/** What /usr/bin/time saw of a step's processes (main and post summed for the action). */
export interface Usage {
  cpuSeconds: number
  peakMiB: number
}

export interface RunFigures extends Usage {
  ms: number
  /** NAR bytes the runner substituted from the cache (the graph's outputs). */
  substitutedBytes: number
  /** NAR bytes of the apps' outputs the runner received from the builder. */
  fromBuilderBytes: number
  /** NAR bytes the builder received from the runner, and how many of those paths were derivations. */
  sentBytes: number
  sentDrvs: number
  /** NAR bytes the builder substituted from the cache. */
  builderSubstitutedBytes: number
}

export interface Phase {
  link: string
  state: string
  results: Map<string, RunFigures[]>
}

export interface VariantNames {
  seed: string
  auto: string
  evaluate: string
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)

function pick(phase: Phase, name: string, field: (f: RunFigures) => number): number {
  return median((phase.results.get(name) ?? []).map(field))
}

export function printPhase(phase: Phase, order: string[], names: VariantNames): void {
  console.log(`\n  ${phase.state} builder, ${phase.link} link (the runner fresh in every run):`)
  console.log(
    `  ${'variant'.padEnd(27)} ${'median s'.padStart(8)} ${'seed/this'.padStart(9)} ${'CPU s'.padStart(6)} ` +
      `${'peak MiB'.padStart(8)} ${'subst. MiB'.padStart(10)} ${'back MiB'.padStart(8)} ${'up MiB'.padStart(7)} ` +
      `${'up .drv'.padStart(7)} ${'builder subst. MiB'.padStart(18)}   runs (s)`
  )
  const seedMs = pick(phase, names.seed, f => f.ms)
  for (const name of order) {
    if (!phase.results.has(name)) continue
    const at = (field: (f: RunFigures) => number): number => pick(phase, name, field)
    console.log(
      `  ${name.padEnd(27)} ${(at(f => f.ms) / 1000).toFixed(2).padStart(8)} ` +
        `${(seedMs / at(f => f.ms)).toFixed(2).padStart(8)}× ${at(f => f.cpuSeconds)
          .toFixed(2)
          .padStart(6)} ` +
        `${at(f => f.peakMiB)
          .toFixed(0)
          .padStart(8)} ${mib(at(f => f.substitutedBytes)).padStart(10)} ` +
        `${mib(at(f => f.fromBuilderBytes)).padStart(8)} ${mib(at(f => f.sentBytes)).padStart(7)} ` +
        `${String(at(f => f.sentDrvs)).padStart(7)} ${mib(at(f => f.builderSubstitutedBytes)).padStart(18)}   ` +
        (phase.results.get(name) ?? []).map(f => (f.ms / 1000).toFixed(2)).join(' ')
    )
  }
  for (const line of targets(phase, names)) console.log(`  target: ${line}`)
}

/** The targets that apply to this phase, each with the figure measured against it. */
function targets(phase: Phase, names: VariantNames): string[] {
  const { seed, auto, evaluate } = names
  if (!phase.results.has(auto) || !phase.results.has(seed)) return []
  const ms = (name: string): number => pick(phase, name, f => f.ms)
  const speedUp = (ms(seed) / ms(auto)).toFixed(2)
  const lines: string[] = []
  if (phase.state === 'warm' && phase.link === 'direct')
    lines.push(`auto ≥ 3× faster than seed-style: ${speedUp}×`)
  if (phase.state === 'cold' && phase.link === 'direct') {
    const substituted = pick(phase, auto, f => f.substitutedBytes)
    lines.push(
      `auto no slower than seed-style: auto / seed ${(ms(auto) / ms(seed)).toFixed(2)}`,
      `auto's bytes to the runner are the final outputs only: ${mib(substituted)} MiB substituted, ` +
        `${mib(pick(phase, auto, f => f.fromBuilderBytes))} MiB of outputs from the builder`
    )
  }
  if (phase.state === 'cold' && phase.link === 'throttled')
    lines.push(`auto ≥ 2× faster than seed-style: ${speedUp}×`)
  if (phase.state === 'warm' && phase.results.has(evaluate)) {
    const at = (name: string, field: (f: RunFigures) => number): number => pick(phase, name, field)
    lines.push(
      `evaluate: builder, runner CPU ≤ 10% of auto's: ` +
        `${((100 * at(evaluate, f => f.cpuSeconds)) / at(auto, f => f.cpuSeconds)).toFixed(0)}%`,
      `evaluate: builder, runner peak memory < 300 MiB: ${at(evaluate, f => f.peakMiB).toFixed(0)} MiB`,
      `evaluate: builder, wall ≤ 1.2× auto's: ${(ms(evaluate) / ms(auto)).toFixed(2)}×`
    )
  }
  return lines
}
