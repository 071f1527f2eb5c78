import { Phase, phase, runCommand, safeLine, shellQuote, startGroup, stderrTail } from '../base/index.js'
import { Input, SetupError, type Settings } from '../inputs/index.js'
import { type BuildOutcome, copyBackRefused, lastError, runLoggedBuild } from './build.js'
import { builtOn } from './ledger.js'
import { builderNix, NIX_FEATURES, type NixRelease, sshDestination } from './nix-cli.js'
import { isStorePath, storeDirOf } from './nix-log.js'
import { copyBack, emptyOutcome, type StoreBuildOutcome } from './store-build.js'
import { askBuilderStore, sshOptionsOf, storeProofs } from './store-proof.js'
import {
  emptyRoute,
  type RunnerTrust,
  type StoreOffer,
  type StoreRoute,
  type StrategyChoice
} from './strategy.js'

/**
 * `evaluate: builder`, beside the remote-store strategy (store-build.ts), whose plan, proof and report it shares:
 * `nix flake archive --to <builder>` sends each flake and its locked inputs to the builder's store (only what it
 * lacks), then one `ssh` runs the builder's own `nix build` on the archived source there, its internal-json log
 * relayed on ssh's stderr, and `nix copy --from` brings the outputs back. The runner fetches the flake's inputs but
 * never evaluates them: the evaluation of a large package set, and its memory, is the builder's.
 */

/** A builder that passed the preflight, with what its key may run there. */
export type EvaluatingOffer = StoreOffer

/**
 * The one builder that evaluates and builds everything: the first that speaks ssh-ng and gives its key a shell.
 * Nothing is evaluated before the build, so nothing says which builder's systems fit: the builder's `nix` says so.
 */
export function chooseEvaluatingBuilder(
  settings: Pick<Settings, 'copyBack' | 'installables'>,
  runner: RunnerTrust,
  builders: EvaluatingOffer[]
): StrategyChoice {
  const refuse = (why: string): never => {
    throw new SetupError(
      `Input '${Input.Evaluate}: builder' cannot serve this run: ${why}`,
      `input ${Input.Evaluate}`
    )
  }
  const refused = copyBackRefused(settings, runner)
  if (refused !== undefined) refuse(refused)
  const stores = builders.filter(builder => builder.protocol === 'ssh-ng')
  if (stores.length === 0) {
    refuse(
      `it sends the flake to an ssh-ng builder's store, and ${builders.map(b => b.label).join(', ')} speak only ` +
        `Nix's ssh protocol. Set '${Input.Protocol}: ssh-ng', or '${Input.Evaluate}: runner'.`
    )
  }
  const chosen = stores.find(builder => builder.access === undefined || builder.access === 'shell')
  if (chosen === undefined) {
    const restricted = stores.map(b => `${b.label} (its key runs only ${b.access ?? 'a shell'})`).join(', ')
    return refuse(
      `the builder's own \`nix build\` needs a shell there, and ${restricted}. Set '${Input.Evaluate}: runner', ` +
        'or give the key a shell on the builder (no forced command in authorized_keys or sshd_config).'
    )
  }
  return {
    strategy: 'remote-store',
    reason:
      `'${Input.Evaluate}: builder': the flake and its locked inputs go to ${chosen.label}, whose own \`nix build\` ` +
      'evaluates and builds them in its store; only the outputs come back',
    // The builder evaluates: the runner knows no derivation of the run.
    routes: [emptyRoute(chosen, settings.installables)]
  }
}

/** An installable as a flake reference and what follows its `#` (with the `#`; empty for the default package). */
export function splitInstallable(installable: string): { flake: string; fragment: string } {
  const hash = installable.indexOf('#')
  if (hash < 0) return { flake: installable, fragment: '' }
  return { flake: installable.slice(0, hash), fragment: installable.slice(hash) }
}

/** `nix flake archive`, after NIX_FEATURES: the flake and every input its lock names, to the builder's store. */
export function archiveArgs(flake: string, storeUri: string): string[] {
  return ['flake', 'archive', '--to', storeUri, '--json', flake]
}

/** The store path of the flake's own source from `nix flake archive --json` (`{"path": …, "inputs": {…}}`). */
export function parseArchivePath(stdout: string, storeDir: string): string | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    return undefined
  }
  const path: unknown =
    typeof parsed === 'object' && parsed !== null && 'path' in parsed ? parsed.path : undefined
  return typeof path === 'string' && isStorePath(path, storeDir) ? path : undefined
}

/**
 * The installable as the builder names it: the archived source in its store, with the flake's `dir` (a flake in a
 * subdirectory of its repository) and the attribute. Nix reads the lock file there and finds each input in the store
 * by the hash the lock gives it, so the builder fetches nothing.
 */
export function builderInstallable(installable: string, source: string): string {
  const { flake, fragment } = splitInstallable(installable)
  const dir = /[?&](dir=[^&]*)/.exec(flake)?.[1]
  return `${source}${dir === undefined ? '' : `?${dir}`}${fragment}`
}

/**
 * The builder's own `nix build`, as the one line ssh hands its shell (each word quoted): internal-json for the ledger,
 * `--json` for the outputs. The user's `args` come first, so a later duplicate cannot switch off the proof; its
 * `--print-out-paths` would share stdout with `--json`.
 */
export function remoteBuildCommand(options: {
  storeUri: string
  installables: string[]
  args: string[]
  rebuild: boolean
}): string {
  return [
    builderNix(options.storeUri),
    ...NIX_FEATURES,
    'build',
    ...options.args.filter(arg => arg !== '--print-out-paths'),
    '--log-format',
    'internal-json',
    '--json',
    '--no-link',
    ...(options.rebuild ? ['--rebuild'] : []),
    ...options.installables
  ]
    .map(shellQuote)
    .join(' ')
}

/** What buildOnBuilder needs besides the settings. */
export interface BuilderEvaluation {
  release: NixRelease
  route: StoreRoute
  /** With NIX_SSHOPTS naming the plan's ssh config: the runner's `nix` and `ssh` reach the builder through it. */
  env: NodeJS.ProcessEnv
}

/** Sends the flakes, builds on the builder, proves each build from its store, and brings the outputs back. */
export async function buildOnBuilder(settings: Settings, how: BuilderEvaluation): Promise<StoreBuildOutcome> {
  const { route, env } = how
  const outcome = emptyOutcome()
  const started = Date.now()
  startGroup(`${Phase.Build} on ${route.label}`)
  const sources = await phase('nix flake archive', archiveFlakes(route, env))
  if (typeof sources === 'string') return { ...outcome, exitCode: 1, messages: [sources] }
  const built = await phase('nix build on the builder', buildThere(settings, route, sources, env))
  Object.assign(outcome, built)
  if (built.exitCode !== 0) return outcome
  outcome.builtIn.set(route.storeUri, built.outPaths)
  const drvPaths = built.builds.filter(build => build.status === 'built').map(build => build.drvPath)
  const copying =
    settings.copyBack && built.outPaths.length > 0 ? copyBack(route, built.outPaths, env) : undefined
  const answer = await phase(
    'proof from the store',
    askBuilderStore(how.release, route.storeUri, drvPaths, started, env, {
      shell: true,
      derivationStore: route.storeUri
    })
  )
  outcome.proofs = storeProofs(route.storeUri, built.builds, answer)
  outcome.sizes = answer.sizes
  const copied = await copying
  if (copied !== undefined) return { ...outcome, exitCode: 1, messages: [...outcome.messages, copied] }
  if (settings.copyBack) outcome.copiedBack.set(route.storeUri, built.outPaths)
  return outcome
}

/**
 * `nix flake archive --to <builder>` for each flake the installables name: each installable as the builder will name
 * it, or an error line for the diagnosis. The runner's `nix` fetches what its store lacks, and sends only what the
 * builder's lacks; the sources are content-addressed, so the builder's store takes them from an untrusted user.
 */
async function archiveFlakes(route: StoreRoute, env: NodeJS.ProcessEnv): Promise<string[] | string> {
  const storeDir = storeDirOf(env)
  const sourceOf = new Map<string, string>()
  for (const flake of new Set(route.installables.map(installable => splitInstallable(installable).flake))) {
    // Fetching and sending a flake's inputs scale with them, as a build does: the job's timeout bounds it.
    const result = await runCommand('nix', [...NIX_FEATURES, ...archiveArgs(flake, route.storeUri)], {
      env,
      track: 'nix flake archive',
      timeoutMs: 'none'
    })
    const source = result.code === 0 ? parseArchivePath(result.stdout.toString(), storeDir) : undefined
    if (source === undefined) {
      const why = result.code === 0 ? 'it named no store path' : stderrTail(result.stderr)
      return `error: sending the flake '${safeLine(flake)}' to '${route.storeUri}' failed: ${why}`
    }
    sourceOf.set(flake, source)
  }
  return route.installables.map(installable =>
    builderInstallable(installable, sourceOf.get(splitInstallable(installable).flake) ?? '')
  )
}

/** The builder's `nix build` over ssh, through the plan's config and master; its log names its own store's builds ''. */
async function buildThere(
  settings: Settings,
  route: StoreRoute,
  installables: string[],
  env: NodeJS.ProcessEnv
): Promise<BuildOutcome> {
  const command = remoteBuildCommand({
    storeUri: route.storeUri,
    installables,
    args: settings.args,
    rebuild: settings.rebuild
  })
  const outcome = await runLoggedBuild(
    {
      program: 'ssh',
      args: [...sshOptionsOf(env), sshDestination(route.storeUri), command],
      track: 'ssh nix build'
    },
    env,
    { local: route.label }
  )
  // Copies in that log are the builder's own (substitutions into its store): none went to or from the runner.
  const there: BuildOutcome = { ...outcome, builds: builtOn(route.storeUri, outcome.builds), copies: [] }
  if (outcome.exitCode !== 0 && outcome.messages.length === 0) {
    there.messages = [
      `error: the builder's nix build failed (exit code ${outcome.exitCode}): ${lastError(outcome)}`
    ]
  }
  return there
}
