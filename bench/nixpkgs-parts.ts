/**
 * `--parts` of bench/nixpkgs-shaped.ts: the pieces its cold rows are made of, each timed alone on a fresh runner and a
 * cold builder, so that the table says where the seed-style hook and `auto` differ, not only by how much.
 *
 * - evaluation: the runner evaluates the apps and writes the graph's `.drv` files (`nix path-info --derivation`); both
 *   pay it, the seed-style build and `auto`'s routing evaluation alike.
 * - runner substitutes: the runner substitutes the apps' inputs from the cache (`nix-store --realise`); the seed-style
 *   hook pays it, since a local goal realises its inputs before the hook may send it away.
 * - inputs up: those inputs go up to the cold builder over SSH (`nix copy --to ssh-ng://`); the hook pays it.
 * - .drv up: the graph's `.drv` closure goes up to the cold builder (`nix copy --derivation`); `auto` pays it, since a
 *   build in the builder's store needs the derivations there.
 * - builder substitutes: the builder substitutes the apps' inputs itself (`nix-store --realise` there); `auto` pays it.
 * - .drv up, ssh://: the same `.drv` upload over the legacy protocol (`nix-store --serve`), measured as another design.
 */
import { type Lab, type LabBuilder, runCommandAs } from '../__tests__/lab/harness.js'
import { type Expression, median, NIX, nonce } from './seed.js'
import {
  builderDatabase,
  deleteFromBuilder,
  deleteFromRunner,
  deletePathsFromBuilder,
  onBuilder,
  pathsAmong
} from './store-paths.js'

export const PARTS = [
  'evaluation',
  'runner substitutes',
  'inputs up',
  '.drv up',
  '.drv up, ssh://',
  'builder substitutes'
] as const
export type Part = (typeof PARTS)[number]
export type PartTimes = Record<Part, number>

export interface PartsContext {
  lab: Lab
  b: LabBuilder
  /** Root's Host alias for `b` on the runner (bench/seed.ts, seedConfig). */
  alias: string
  graphId: string
  /** A run's flake (its `args` name the cache), made fresh for `id`. */
  expression: (id: string) => Promise<Expression>
  /** Removes what `expression` made, and the flake's source from both stores. */
  cleanUp: (id: string) => Promise<void>
}

const FLAKES = ['--extra-experimental-features', 'flakes']

/** One run of every part, in ms, in an order that leaves each cold part a cold builder. */
export async function measureParts(context: PartsContext): Promise<PartTimes> {
  const { lab, b, alias, graphId } = context
  await deleteFromRunner(lab, [graphId])
  await deleteFromBuilder(lab, b, [graphId])
  const id = nonce()
  const expr = await context.expression(id)
  const store = `ssh-ng://${b.user}@${alias}`
  const times: Partial<PartTimes> = {}
  const time = async (
    part: Part,
    run: () => Promise<{ code: number | null; stderr: string; stdout: string }>
  ) => {
    const started = performance.now()
    const result = await run()
    times[part] = performance.now() - started
    if (result.code !== 0) throw new Error(`${part} failed: ${result.stderr.split('\n').slice(-3).join(' ')}`)
    return result.stdout.split('\n').filter(line => line !== '')
  }
  try {
    const drvs = await time('evaluation', () =>
      runCommandAs(lab, 'runner', [
        ...NIX,
        ...FLAKES,
        'path-info',
        '--derivation',
        ...expr.args,
        ...expr.attributes
      ])
    )
    const inputs = await appInputs(lab, drvs)
    await time('runner substitutes', () =>
      runCommandAs(lab, 'runner', ['nix-store', '--realise', ...expr.args, ...inputs])
    )
    await time('inputs up', () => runCommandAs(lab, 'root', [...NIX, 'copy', '--to', store, ...inputs]))
    await deletePathsFromBuilder(lab, b, await pathsAmong(builderDatabase(b), inputs))
    await time('.drv up', () =>
      runCommandAs(lab, 'root', [...NIX, 'copy', '--derivation', '--to', store, ...drvs])
    )
    await time('builder substitutes', () => onBuilder(lab, b, ['nix-store', '--realise', ...inputs]))
    // The same upload over the legacy protocol (nix-store --serve), a design that might send it faster.
    await deleteFromBuilder(lab, b, [graphId, id])
    await time('.drv up, ssh://', () =>
      runCommandAs(lab, 'root', [...NIX, 'copy', '--derivation', '--to', `ssh://${b.user}@${alias}`, ...drvs])
    )
    return times as PartTimes
  } finally {
    await context.cleanUp(id)
    await deleteFromRunner(lab, [graphId])
    await deleteFromBuilder(lab, b, [graphId])
  }
}

/** The output paths of the apps' input derivations: what a build of the apps needs valid beside it. */
async function appInputs(lab: Lab, drvs: string[]): Promise<string[]> {
  const references = await runCommandAs(lab, 'runner', ['nix-store', '--query', '--references', ...drvs])
  const inputDrvs = references.stdout.split('\n').filter(line => line.endsWith('.drv'))
  const outputs = await runCommandAs(lab, 'runner', ['nix-store', '--query', '--outputs', ...inputDrvs])
  const paths = outputs.stdout.split('\n').filter(line => line !== '')
  if (references.code !== 0 || outputs.code !== 0 || paths.length === 0)
    throw new Error(`the apps' inputs: ${references.stderr}${outputs.stderr}`)
  return [...new Set(paths)]
}

/** The parts' medians, and what each way of building pays of them on a cold builder. */
export function printParts(runs: PartTimes[]): void {
  const seconds = (part: Part): number => median(runs.map(run => run[part])) / 1000
  console.log(`\n  Parts of a cold run, each timed alone (medians of ${runs.length}):`)
  for (const part of PARTS) console.log(`    ${part.padEnd(20)} ${seconds(part).toFixed(2)} s`)
  const seed = seconds('evaluation') + seconds('runner substitutes') + seconds('inputs up')
  const auto = seconds('evaluation') + seconds('.drv up') + seconds('builder substitutes')
  console.log(
    `    seed-style hook, cold: evaluation + runner substitutes + inputs up = ${seed.toFixed(2)} s\n` +
      `    auto, cold:            evaluation + .drv up + builder substitutes = ${auto.toFixed(2)} s` +
      ` (${(auto / seed).toFixed(2)}× the hook's)\n` +
      `    warm, the hook still pays runner substitutes, and auto neither of its cold parts but the evaluation: at ` +
      `most ${(seed - seconds('inputs up')).toFixed(2)} s against ${seconds('evaluation').toFixed(2)} s before ` +
      `the builds and the copy back, which both pay`
  )
}
