import { Input } from './constants.js'
import { InputError } from './errors.js'
import { printable } from './fields.js'

/**
 * Where the installables are evaluated: on the runner (Nix's usual way, the derivations then go to the builder), or on
 * the builder itself, which receives the flake and its locked inputs and runs its own `nix build` there.
 */
export type Evaluate = 'runner' | 'builder'

export function parseEvaluate(value: string): Evaluate {
  const evaluate = value.trim() || 'runner'
  if (evaluate === 'runner' || evaluate === 'builder') return evaluate
  throw new InputError(
    Input.Evaluate,
    `"${printable(value)}" is not a place to evaluate; use runner (the default) or builder`
  )
}

/** What the check of `evaluate: builder` looks at. */
export interface EvaluationRequest {
  installables: string[]
  args: string[]
  strategy: string
  mode: string
}

const RUNNER = `'${Input.Evaluate}: runner'`

/**
 * What `evaluate: builder` cannot serve, refused before anything is written. Only a flake can go to the builder
 * whole: its lock file pins every input by hash. A file named by `-f` or `--expr` may import any path on the runner,
 * which no copy of that one file would bring along.
 */
export function checkBuilderEvaluation(request: EvaluationRequest): void {
  const refuse = (why: string): never => {
    throw new InputError(Input.Evaluate, `'builder' ${why}`)
  }
  if (request.mode === 'canary') {
    refuse(`is for build mode: the canary builds its own derivation on each builder. Set ${RUNNER}.`)
  }
  if (request.strategy === 'hook') {
    refuse(
      `builds in the builder's own store, and '${Input.Strategy}: hook' evaluates on the runner and hands the ` +
        `derivations to Nix's build hook. Set '${Input.Strategy}: remote-store' (or auto), or set ${RUNNER}.`
    )
  }
  if (request.installables.length === 0) {
    refuse(
      `needs flake installables in '${Input.Installables}' (e.g. \`.#package\`): a configure-only step, or a build ` +
        `named only in '${Input.Args}', evaluates on the runner. Set ${RUNNER}, or list them in '${Input.Installables}'.`
    )
  }
  const nonFlake = request.args.find(arg => /^(-f|--file|--expr)(=.*)?$/.test(arg))
  if (nonFlake !== undefined) {
    refuse(
      `sends a flake and its locked inputs to the builder; '${Input.Args}' has ${printable(nonFlake)}, whose ` +
        `expression may import any file on the runner, which cannot go along. Set ${RUNNER} for it, or build ` +
        'it from a flake.'
    )
  }
  const storePath = request.installables.find(installable => /^\/nix\/store\/[^#]*$/.test(installable))
  if (storePath !== undefined) {
    refuse(
      `evaluates flakes on the builder, and ${printable(storePath)} is a store path, which has nothing to ` +
        `evaluate. Set ${RUNNER} for it.`
    )
  }
  const outLink = request.args.find(arg => /^(-o|--out-link)$/.test(arg) || arg.startsWith('--out-link='))
  if (outLink !== undefined) {
    refuse(
      `makes no out-links on the runner (${printable(outLink)} in '${Input.Args}'): the outputs are named in the ` +
        `'out-paths' output instead. Take ${printable(outLink)} out of '${Input.Args}', or set ${RUNNER}.`
    )
  }
}
