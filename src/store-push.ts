import { logInfo, Phase, phase, runCommand, shellQuote, startGroup, stderrTail } from './base/index.js'
import { Input, pushPlace, type PushTarget, SetupError, type Settings } from './inputs/index.js'
import {
  builderNix,
  isStorePath,
  parsePathInfo,
  sshOptionsOf,
  sshDestination,
  storeDirOf,
  type StrategyChoice
} from './nix/index.js'
import type { PushEntry } from './report/index.js'

/**
 * `push-to`: after a remote-store build, the builder itself copies the outputs and their closure to the store named,
 * over the action's SSH connection, so the cache's credentials stay on the builder and the runner carries no byte of
 * it. Its refusals come before anything is written.
 */

/**
 * What `push-to` cannot serve once the strategy is chosen: a build through the hook, whose outputs come to the
 * runner, or a builder whose key runs only `nix-daemon --stdio`, which runs no `nix copy` there.
 */
export function refusePush(settings: Settings, choice: Pick<StrategyChoice, 'strategy' | 'routes'>): void {
  if (settings.pushTo === undefined) return
  if (choice.strategy !== 'remote-store') {
    throw new SetupError(
      `Input '${Input.PushTo}': the builder copies the outputs to the store from its own store, and this run builds ` +
        `through Nix's build hook (chosen by '${Input.Strategy}: ${settings.strategy}'), whose outputs come to the ` +
        `runner. Set '${Input.Strategy}: remote-store', or push from the runner in a later step.`,
      `input ${Input.PushTo}`
    )
  }
  const forced = choice.routes.find(route => route.access !== undefined && route.access !== 'shell')
  if (forced !== undefined) {
    throw new SetupError(
      `Input '${Input.PushTo}': builder ${forced.label}'s key runs only nix-daemon (a forced command), so it cannot ` +
        `run \`nix copy --to\` there. Let that key run a shell on the builder, or take '${Input.PushTo}' out and ` +
        'push from the runner in a later step.',
      `input ${Input.PushTo}`
    )
  }
}

/** The store URI `nix copy --to` takes: with `push-key`, its `secret-key` setting, which signs what it copies. */
export function pushStoreUri(target: PushTarget): string {
  if (target.keyPath === undefined) return target.uri
  return `${target.uri}${target.uri.includes('?') ? '&' : '?'}secret-key=${target.keyPath}`
}

/**
 * The line ssh hands the builder's shell, each word quoted for it: `nix copy --to` of the outputs, then the JSON of
 * their closure, whose NAR sizes say what was offered to the store.
 */
export function pushCommand(storeUri: string, target: PushTarget, paths: readonly string[]): string {
  const nix = [builderNix(storeUri), '--extra-experimental-features', 'nix-command']
  const copy = [...nix, 'copy', '--to', pushStoreUri(target), '--', ...paths]
  const closure = [...nix, 'path-info', '--json', '--recursive', '--', ...paths]
  return `${copy.map(shellQuote).join(' ')} && ${closure.map(shellQuote).join(' ')}`
}

/** Runs the push on the builder at `storeUri`: what was pushed, or the error line for the diagnosis. */
export async function pushFromBuilder(options: {
  storeUri: string
  target: PushTarget
  paths: readonly string[]
  env: NodeJS.ProcessEnv
}): Promise<PushEntry | string> {
  const { storeUri, target, env } = options
  const storeDir = storeDirOf(env)
  const paths = options.paths.filter(path => isStorePath(path, storeDir))
  const to = pushPlace(target.uri)
  const result = await runCommand(
    'ssh',
    [...sshOptionsOf(env), sshDestination(storeUri), pushCommand(storeUri, target, paths)],
    // The copy scales with the outputs' closure, as the build does: the job's timeout bounds it.
    { env, track: 'ssh nix copy --to', timeoutMs: 'none' }
  )
  if (result.code !== 0) {
    return `error: the builder ${storeUri} could not copy the outputs to ${to}: ${stderrTail(result.stderr)}`
  }
  let closure: { path: string; narSize: number }[] = []
  try {
    closure = parsePathInfo(result.stdout.toString()).filter(info => isStorePath(info.path, storeDir))
  } catch {
    // Pushed, sizes unknown: the entry says 0 bytes over no closure rather than failing a push that succeeded.
  }
  return {
    builder: storeUri,
    to,
    signedWith: target.keyPath ?? "the builder's secret-key-files",
    paths,
    closurePaths: closure.length,
    narBytes: closure.reduce((total, info) => total + info.narSize, 0)
  }
}

/** Each builder's outputs pushed, builder after builder: the entries, or the first failure's line. */
export async function pushOutputs(
  settings: Settings,
  builtIn: ReadonlyMap<string, readonly string[]>,
  env: NodeJS.ProcessEnv
): Promise<{ pushes: PushEntry[]; failure?: string }> {
  const target = settings.pushTo
  const pushes: PushEntry[] = []
  if (target === undefined) return { pushes }
  startGroup(Phase.Push)
  for (const [storeUri, paths] of builtIn) {
    if (paths.length === 0) continue
    const pushed = await phase('push', pushFromBuilder({ storeUri, target, paths, env }))
    if (typeof pushed === 'string') return { pushes, failure: pushed }
    logInfo(`Pushed ${paths.length} output(s) from ${storeUri} to ${pushed.to}: ${paths.join(' ')}`)
    pushes.push(pushed)
  }
  return { pushes }
}
