import { isIP } from 'node:net'
import { CANARY_ACTION, Input, MODE } from './constants.js'
import { InputError } from './errors.js'

/**
 * Parsers for single input values: each returns the typed value or throws an InputError that names the input, shows
 * the refused value safely, and says what is expected. `where` prefixes the message (e.g. "line 2: "). At the end, the
 * one check of a value against others: what `evaluate: builder` cannot serve.
 */

export type Protocol = 'ssh-ng' | 'ssh'

/** What `systems`, `max-jobs` and `supported-features` may say instead of a value: ask the builder. */
export const AUTO = 'auto'
export type Auto = typeof AUTO

export function orAuto<T>(value: string, parse: (value: string) => T): T | Auto {
  return value.trim() === AUTO ? AUTO : parse(value)
}

const USER = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
export const SYSTEM = /^[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)+$/
// Starts like a word: a lone `-` means "none" in the machines file, and `-----BEGIN …` is a pasted key.
export const FEATURE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/
// eslint-disable-next-line no-control-regex -- finding control characters is the point
export const CONTROL = /[\u0000-\u001f\u007f]/

export function parseHost(input: string, value: string, where = ''): string {
  if (HOSTNAME.test(value) || isIP(value) !== 0) return value
  throw new InputError(input, `${where}"${printable(value)}" is not a DNS name or an IP address`)
}

export function parseUser(input: string, value: string, where = ''): string {
  if (value === '') throw new InputError(input, `${where}the SSH user on the builder is required`)
  if (USER.test(value)) return value
  throw new InputError(
    input,
    `${where}"${printable(value)}" is not a valid user name (letters, digits, "_", "." and "-", starting with a letter or "_")`
  )
}

export function parsePort(input: string, value: string, where = ''): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN
  if (port >= 1 && port <= 65535) return port
  throw new InputError(input, `${where}"${printable(value)}" is not a TCP port (1-65535)`)
}

export function parseProtocol(input: string, value: string, where = ''): Protocol {
  if (value === 'ssh-ng' || value === 'ssh') return value
  throw new InputError(
    input,
    `${where}"${printable(value)}" is not a protocol; use ssh-ng (recommended) or ssh`
  )
}

export function parseCount(input: string, value: string, minimum: number, where = ''): number {
  const count = /^\d{1,6}$/.test(value) ? Number(value) : NaN
  if (count >= minimum) return count
  throw new InputError(input, `${where}"${printable(value)}" is not a whole number of at least ${minimum}`)
}

export function parseList(input: string, value: string, pattern: RegExp, what: string, where = ''): string[] {
  const items = value.split(/[\s,]+/).filter(item => item !== '')
  for (const item of items) {
    if (!pattern.test(item)) throw new InputError(input, `${where}"${printable(item)}" is not ${what}`)
  }
  return [...new Set(items)]
}

export function parseStrategy(value: string): 'hook' | 'remote-store' | 'auto' {
  const strategy = value.trim() || 'auto'
  if (strategy === 'hook' || strategy === 'remote-store' || strategy === 'auto') return strategy
  throw new InputError(
    Input.Strategy,
    `"${printable(value)}" is not a strategy; use auto (the default), hook or remote-store`
  )
}

export function parseFallback(value: string): 'fail' | 'local' {
  const fallback = value.trim() || 'fail'
  if (fallback === 'fail' || fallback === 'local') return fallback
  throw new InputError(
    Input.Fallback,
    `"${printable(value)}" is not a fallback; use fail (the default) or local`
  )
}

/**
 * The `mode` a workflow may still give the main action, which has no such input: `build`, what it does anyway, passes;
 * any other value, `canary` above all, is refused with the way to the canary action.
 */
export function refuseMode(value: string): void {
  const mode = value.trim()
  if (mode === '' || mode === 'build') return
  throw new InputError(
    MODE,
    `"${printable(mode)}" is not a mode of this action, which only builds: the canary is its own action. Use ` +
      `\`uses: ${CANARY_ACTION}\` for it, with the same builder inputs and the canary's thresholds, and take ` +
      `'${MODE}' out of this step.`
  )
}

export function parseNumber(
  input: string,
  value: string,
  fallback: number,
  minimum: number,
  maximum: number
): number {
  const text = value.trim()
  if (text === '') return fallback
  const number = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN
  if (number >= minimum && number <= maximum) return number
  throw new InputError(input, `"${printable(text)}" is not a number from ${minimum} to ${maximum}`)
}

export function parseBoolean(input: string, value: string, fallback: boolean): boolean {
  const normalised = value.trim().toLowerCase()
  if (normalised === '') return fallback
  if (normalised === 'true') return true
  if (normalised === 'false') return false
  throw new InputError(input, `"${printable(value)}" is not true or false`)
}

export function parseInstallables(value: string): string[] {
  const installables: string[] = []
  for (const [index, raw] of value.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    if (CONTROL.test(line) || /\s/.test(line)) {
      throw new InputError(
        Input.Installables,
        `line ${index + 1} must be one installable per line, without spaces`
      )
    }
    if (line.startsWith('-')) {
      throw new InputError(
        Input.Installables,
        `line ${index + 1} "${printable(line)}" is an option; put options in '${Input.Args}'`
      )
    }
    installables.push(line)
  }
  return installables
}

/** Shows a refused value without letting it forge log lines or workflow commands. */
export function printable(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 60)}…` : value
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  return shown.replace(/[\u0000-\u001f\u007f]/g, ch => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

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

/** Where the builder copies the outputs after a remote-store build (`push-to`), and the key that signs them there. */
export interface PushTarget {
  /** The store URI as given, which goes to `nix copy --to` on the builder. */
  uri: string
  /** A secret key file on the builder (`push-key`); without it the builder's own `secret-key-files` signs. */
  keyPath?: string
}

// The schemes of stores that can take a copy (Nix's store implementations; `gs://` and the like are not among them).
const PUSH_SCHEMES = ['file', 'http', 'https', 's3', 'ssh', 'ssh-ng']
// A URI's own characters, without `'`, `$`, `` ` ``, `;`, `(`, `)`, `*`, `!` or `#`: quoting keeps the builder's shell
// from reading any of them, and no store URI needs them.
const PUSH_URI = /^([a-z][a-z0-9+-]*):\/\/([A-Za-z0-9._~:/?@&+,=%[\]-]*)$/
const KEY_PATH = /^\/[A-Za-z0-9._/+-]+$/

/**
 * `push-to` and `push-key`: a store URI with a scheme that takes a copy, and an absolute path on the builder. The URI
 * reaches the builder's shell (quoted), so whitespace, control characters and shell metacharacters are refused.
 */
export function parsePushTarget(uriValue: string, keyValue: string): PushTarget | undefined {
  const uri = uriValue.trim()
  const keyPath = keyValue.trim()
  if (uri === '') {
    if (keyPath !== '')
      throw new InputError(Input.PushKey, `is set without '${Input.PushTo}': set both, or neither`)
    return undefined
  }
  const match = PUSH_URI.exec(uri)
  if (match === null || CONTROL.test(uri)) {
    throw new InputError(
      Input.PushTo,
      `"${printable(uri)}" is not a store URI: write scheme://…, e.g. s3://bucket?region=eu-west-1 or ` +
        'file:///var/cache/nix, with no spaces, quotes or any of $ ` ; ( ) * ! #'
    )
  }
  const [, scheme = '', rest = ''] = match
  if (!PUSH_SCHEMES.includes(scheme)) {
    throw new InputError(
      Input.PushTo,
      `"${printable(scheme)}://" is not a store Nix copies to; use one of ${PUSH_SCHEMES.map(s => `${s}://`).join(', ')}`
    )
  }
  const where = rest.replace(/\?.*$/, '')
  if (where === '' || (scheme === 'file' && !where.startsWith('/'))) {
    throw new InputError(
      Input.PushTo,
      `"${printable(uri)}" names no place: e.g. file:///var/cache/nix (three slashes)`
    )
  }
  if (/[?&]secret-key=/.test(uri)) {
    throw new InputError(
      Input.PushTo,
      `has a secret-key setting: give the key's path on the builder in '${Input.PushKey}'`
    )
  }
  if (keyPath === '') return { uri }
  if (!KEY_PATH.test(keyPath) || keyPath.split('/').includes('..')) {
    throw new InputError(
      Input.PushKey,
      `"${printable(keyPath)}" is not an absolute path on the builder (letters, digits, ".", "_", "+", "-" and "/")`
    )
  }
  return { uri, keyPath }
}

/**
 * The URI without its query, where settings (and any credentials) go, and without a password in its user part: what
 * the log, summary and report name.
 */
export function pushPlace(uri: string): string {
  return uri.replace(/\?.*$/, '').replace(/^([a-z][a-z0-9+-]*:\/\/)[^@/]*:[^@/]*@/, '$1')
}

/** What `push-to` cannot serve, refused before anything is written: it pushes a remote-store build's outputs. */
export function checkPushRequest(request: EvaluationRequest): void {
  const refuse = (why: string): never => {
    throw new InputError(Input.PushTo, why)
  }
  if (request.strategy === 'hook') {
    refuse(
      `has the builder copy the outputs to the store from its own store, and '${Input.Strategy}: hook' builds ` +
        `through Nix's build hook, whose outputs all come to the runner. Set '${Input.Strategy}: remote-store' ` +
        '(or auto), or push from the runner in a later step.'
    )
  }
  if (request.installables.length === 0 && request.args.length === 0) {
    refuse(
      `needs a build ('${Input.Installables}' or '${Input.Args}'): a configure-only step builds nothing to push.`
    )
  }
}
