import { mkdtemp, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { phase, runCommand, safeLine, stderrTail } from '../base/index.js'
import { logInfo, logWarning, Phase, startGroup } from '../base/index.js'
import type { Settings } from '../inputs/index.js'
import {
  asksForOutLinks,
  type BuildOutcome,
  buildArguments,
  forBuild,
  forCopy,
  forLinks,
  lastError,
  runNixBuild
} from './build.js'
import type { BuildRecord } from './ledger.js'
import { ActivityType, type NixEvent } from './nix-log.js'
import { copyLinksOutputs, NIX_FEATURES, type NixRelease } from './nix-cli.js'
import {
  askBuilderStore,
  copiesByBuilder,
  narSizes,
  pathInfoRoute,
  type StoreAnswer,
  type StoreProof,
  storeProofs
} from './store-proof.js'
import { derivedPathArgs, EVALUATION_TIMEOUT_MS, type RoutedDerivation, type StoreRoute } from './strategy.js'
import { isStorePath, storeDirOf } from './nix-log.js'

/**
 * The `remote-store` strategy (strategy.ts): the build runs in a builder's own store. The runner's `nix` is the SSH
 * client here, not root's nix-daemon, so the SSH settings reach it through NIX_SSHOPTS (`-F <file>`) in `env`, and
 * nothing of root's is touched.
 */

export type { StoreProof }

export interface StoreBuildOutcome extends BuildOutcome {
  /** Per derivation built: the proof from the log and from the builder's store. */
  proofs: Map<string, StoreProof>
  /** The requested outputs copied back to the runner, by builder store URI. */
  copiedBack: Map<string, string[]>
  /** The requested outputs valid in each builder's store once its builds succeeded, by store URI. */
  builtIn: Map<string, string[]>
  /** NAR sizes learnt on the way (the builder's store about its outputs, the runner's about what went up). */
  sizes: Map<string, number>
}

/**
 * The proof of what one route built, from its builder's store (`asking`: asked already, or how to ask), and the sizes
 * of what went up, into `outcome`. Independent of the copy back: over a shared connection they overlap.
 */
async function proveRoute(
  route: {
    storeUri: string
    one: BuildOutcome
    env: NodeJS.ProcessEnv
    asking: Promise<StoreAnswer> | ((drvPaths: string[]) => Promise<StoreAnswer>)
  },
  outcome: StoreBuildOutcome
): Promise<void> {
  const { storeUri, one, env, asking } = route
  const sent = copiesByBuilder(one.copies, [storeUri]).get(storeUri)?.sent ?? new Set<string>()
  const sizing = narSizes([...sent], env)
  const built = one.builds.filter(build => build.status === 'built').map(build => build.drvPath)
  const answer = await (typeof asking === 'function' ? asking(built) : asking)
  for (const [drv, proof] of storeProofs(storeUri, one.builds, answer)) outcome.proofs.set(drv, proof)
  for (const [path, size] of [...answer.sizes, ...(await sizing)]) outcome.sizes.set(path, size)
}

/** One session with a builder's store: its URI, the step's name for it, and the command-line tail naming its build. */
export interface StoreSession {
  storeUri: string
  label: string
  targets: string[]
}

/** A store build's outcome before anything was built: what each way of building in a builder's store fills in. */
export function emptyOutcome(): StoreBuildOutcome {
  return {
    exitCode: 0,
    builds: [],
    outPaths: [],
    messages: [],
    lastLines: new Map(),
    copies: [],
    proofs: new Map(),
    copiedBack: new Map(),
    builtIn: new Map(),
    sizes: new Map()
  }
}

/** What a build in the builders' own stores is given: each route, bound to its builder's store URI and max-jobs. */
export interface StoreBuildOptions {
  release: NixRelease
  settings: Settings
  routes: StoreRoute[]
  env: NodeJS.ProcessEnv
  /** The plan's own directory, for the links that name the outputs. */
  workDir: string
  /**
   * Run on each route's builder once its build is done and before anything comes back (`push-to`): a line for the
   * diagnosis fails the build. The build and the copy back are then two commands, never one session.
   */
  beforeCopyBack?: (storeUri: string, outPaths: readonly string[]) => Promise<string | undefined>
}

/**
 * Builds each route's derivations (the outputs its installables selected) in that builder's store, one builder after
 * the other, with that builder's max-jobs, then proves each derivation from the builder's store and brings the
 * requested outputs back (unless `copy-back` is false). Where the runner's `nix copy` can name what it copied
 * (copyLinksOutputs), one `nix copy --from` session builds and brings back; otherwise `nix build --store`, then
 * `nix copy --from`.
 */
export async function buildInStores(options: StoreBuildOptions): Promise<StoreBuildOutcome> {
  const { release, settings, routes, env, workDir } = options
  const outcome = emptyOutcome()
  // `nix copy` has no `--rebuild`: a check build goes through `nix build --store`.
  const rebuild = settings.rebuild || settings.args.includes('--rebuild')
  const oneSession =
    settings.copyBack && !rebuild && copyLinksOutputs(release) && options.beforeCopyBack === undefined
  for (const route of routes) {
    const started = Date.now()
    const jobs = route.maxJobs ?? 1
    // The proof's `nix` on the builder starts with the build, and is asked once the builds are over (store-proof.ts).
    const how = pathInfoRoute(route.storeUri, env, { start: oneSession, access: route.access })
    const targets = derivedPathArgs(release, route.derivations)
    const session = { storeUri: route.storeUri, label: route.label, targets }
    startGroup(`${Phase.Build} on ${route.label}`)
    try {
      const ask = (drvPaths: string[]): Promise<StoreAnswer> =>
        phase('proof from the store', askBuilderStore(release, route.storeUri, drvPaths, started, env, how))
      // In one session the builds are over when the copy back begins: the store is asked then, beside the copy.
      let asking: Promise<StoreAnswer> | undefined
      const one = oneSession
        ? await phase(
            'nix copy --from',
            buildAndCopyBack(settings, session, jobs, env, workDir, built => (asking = ask(built)))
          )
        : await phase('nix build --store', buildInStore(settings, session, jobs, env))
      asking?.catch(() => undefined)
      outcome.builds.push(...one.builds)
      outcome.outPaths.push(...one.outPaths)
      outcome.messages.push(...one.messages)
      outcome.copies.push(...one.copies)
      for (const [drv, lines] of one.lastLines) outcome.lastLines.set(drv, lines)
      if (one.exitCode !== 0) {
        outcome.exitCode = one.exitCode
        break
      }
      outcome.builtIn.set(route.storeUri, one.outPaths)
      const refused =
        one.outPaths.length > 0 ? await options.beforeCopyBack?.(route.storeUri, one.outPaths) : undefined
      if (refused !== undefined) {
        outcome.exitCode = 1
        outcome.messages.push(refused)
        break
      }
      const copying =
        settings.copyBack && !oneSession && one.outPaths.length > 0
          ? copyBack(route, one.outPaths, env)
          : undefined
      await proveRoute({ storeUri: route.storeUri, one, env, asking: asking ?? ask }, outcome)
      const copied = await copying
      if (copied !== undefined) {
        outcome.exitCode = 1
        outcome.messages.push(copied)
        break
      }
      if (settings.copyBack) outcome.copiedBack.set(route.storeUri, one.outPaths)
    } finally {
      // Not asked (the build failed, or built nothing there): it ends, its stdin closed empty.
      how.early?.cancel()
    }
  }
  if (outcome.exitCode === 0 && outcome.outPaths.length > 0) {
    const linked = routes.flatMap(route => route.derivations)
    await phase('out-links', linkOutputs(release, settings, linked))
  }
  return outcome
}

/**
 * `nix build --store <builder> --eval-store auto` of the derivations the runner evaluated: the builder's daemon builds
 * the graph, its derivations copied there from the runner's store.
 */
async function buildInStore(
  settings: Settings,
  session: StoreSession,
  maxJobs: number,
  env: NodeJS.ProcessEnv
): Promise<BuildOutcome> {
  const args = storeBuildArguments(settings, session, maxJobs)
  return inBuilderStore(session.storeUri, await runNixBuild(args, env, { local: session.label }))
}

/** buildInStore's command line: only the build's options of `args`, and the derivations, not the installables. */
export function storeBuildArguments(settings: Settings, session: StoreSession, maxJobs: number): string[] {
  // The builder's daemon builds: `-j` (the client's max-jobs) reaches it for this session.
  const args = buildArguments({
    ...settings,
    args: forBuild(settings.args),
    installables: session.targets,
    localJobs: maxJobs
  })
  const build = args.indexOf('build')
  args.splice(build + 1, 0, '--store', session.storeUri, '--eval-store', 'auto')
  return args
}

/**
 * `nix copy --from <builder> --eval-store auto --no-check-sigs`: as buildInStore, and the same session brings the
 * requested outputs back (each ssh-ng session costs its own start even through an open master). Its links,
 * made in a directory of its own under `workDir`, name the outputs in the order `nix build --json` gives them.
 */
async function buildAndCopyBack(
  settings: Settings,
  route: StoreSession,
  maxJobs: number,
  env: NodeJS.ProcessEnv,
  workDir: string,
  buildsOver: (built: string[]) => void
): Promise<BuildOutcome> {
  const links = await mkdtemp(join(workDir, 'out-'))
  const args = copyArguments(settings, route, maxJobs, join(links, OUT_LINK))
  // `nix copy` realises every installable before it copies: the first copy from the builder's store says the builds
  // it started there are over, and all succeeded. Only a copy from that store: the builder's own substitutions (from
  // its binary caches, `https://…`) come relayed as copies too, while its builds still run.
  const started = new Set<string>()
  const storeDir = storeDirOf(env)
  let over = false
  const watch = (event: NixEvent): void => {
    if (event.action !== 'start' || over) return
    const [first, from] = event.fields
    if (event.type === ActivityType.Build && typeof first === 'string' && isStorePath(first, storeDir))
      started.add(first)
    if (
      event.type === ActivityType.CopyPath &&
      typeof from === 'string' &&
      copiesFrom(from, route.storeUri)
    ) {
      over = true
      buildsOver([...started])
    }
  }
  const outcome = inBuilderStore(route.storeUri, await runNixBuild(args, env, { local: route.label }, watch))
  if (outcome.exitCode !== 0) {
    // Built there, failed on the way back: said as the copy back's failure, which the diagnosis reads first.
    const back = copiesByBuilder(outcome.copies, [route.storeUri]).get(route.storeUri)?.received.size ?? 0
    if (back > 0 && outcome.builds.every(build => build.status !== 'failed')) {
      outcome.messages.push(
        `error: copying the outputs back from '${route.storeUri}' failed: ${lastError(outcome)}`
      )
    }
    return outcome
  }
  return { ...outcome, outPaths: await readOutLinks(links, storeDir) }
}

/**
 * Whether a copy whose source Nix names `from` comes from the builder's store at `storeUri`. Nix names that store by
 * its URI (2.26 by its scheme alone, `ssh-ng://`), the runner's store `daemon` or `local`, and a binary cache by its
 * URL: so the scheme decides.
 */
export function copiesFrom(from: string, storeUri: string): boolean {
  const scheme = /^[a-z-]+:\/\//.exec(storeUri)?.[0]
  return scheme !== undefined && from.startsWith(scheme)
}

/** buildAndCopyBack's command line: `nix copy` takes none of `nix build`'s result options, and its own link. */
export function copyArguments(
  settings: Settings,
  session: StoreSession,
  maxJobs: number,
  link: string
): string[] {
  return [
    ...NIX_FEATURES,
    'copy',
    '--from',
    session.storeUri,
    '--eval-store',
    'auto',
    '--no-check-sigs',
    ...forCopy(settings.args),
    // After the user's `args`, as in buildArguments: a later duplicate cannot switch off the proof.
    '--log-format',
    'internal-json',
    '--max-jobs',
    String(maxJobs),
    '--out-link',
    link,
    ...session.targets
  ]
}

/** The name of the links `nix copy` makes; `out`, `out-dev`, `out-1`, … as Nix's createOutLinks names them. */
const OUT_LINK = 'out'

/**
 * The store paths the links in `dir` point to, by installable, then output, as `nix build --json` orders them: Nix
 * names the i-th installable's output o `out[-i][-o]`, without `-i` for the first and `-o` for `out`.
 */
export async function readOutLinks(dir: string, storeDir?: string): Promise<string[]> {
  const links: { index: number; output: string; target: string }[] = []
  for (const name of await readdir(dir)) {
    const match = /^out(?:-(\d+))?(?:-(.+))?$/.exec(name)
    if (match === null) continue
    links.push({
      index: Number(match[1] ?? 0),
      output: match[2] ?? 'out',
      target: await readlink(join(dir, name))
    })
  }
  links.sort((x, y) => x.index - y.index || (x.output < y.output ? -1 : x.output > y.output ? 1 : 0))
  return links.map(link => link.target).filter(target => isStorePath(target, storeDir))
}

/** Every build of a session with a builder's store ran there. */
function inBuilderStore(storeUri: string, outcome: BuildOutcome): BuildOutcome {
  // That store's daemon's activities come back relayed, with an empty machine name as for any build local to that
  // store (seen on 2.8 and 2.34): the progress line names it after the builder.
  const builds: BuildRecord[] = outcome.builds.map(record => ({
    ...record,
    machine: record.machine === '' ? storeUri : record.machine
  }))
  return { ...outcome, builds }
}

/**
 * The out-links the user's `args` ask for (`-o`/`--out-link`), which neither `nix build --store` nor `nix copy` makes
 * as a plain build would: a `nix build` here of the same derivations' outputs, now valid here, in the order the
 * installables selected them, makes them the same way and builds nothing (`--max-jobs 0`, no builders). With
 * `copy-back: false` there is nothing here to link to.
 */
async function linkOutputs(
  release: NixRelease,
  settings: Settings,
  derivations: RoutedDerivation[]
): Promise<void> {
  if (!asksForOutLinks(settings.args)) return
  if (!settings.copyBack) {
    logWarning(
      "The out-links 'args' asks for were not made: with 'copy-back: false' the outputs stay in the builder's store."
    )
    return
  }
  const ordered = [...derivations].sort((x, y) => x.order - y.order)
  const result = await runCommand(
    'nix',
    [
      ...NIX_FEATURES,
      'build',
      ...forLinks(settings.args),
      '--max-jobs',
      '0',
      '--builders',
      '',
      ...derivedPathArgs(release, ordered)
    ],
    { timeoutMs: EVALUATION_TIMEOUT_MS }
  )
  if (result.code !== 0) {
    const last = safeLine(result.stderr.trim().split('\n').at(-1) ?? `exit code ${result.code}`)
    logWarning(`The out-links 'args' asks for could not be made: ${last}`)
  }
}

/**
 * Brings the requested outputs back, a phase in its own group: in a builder's store, unless one `nix copy` builds and
 * brings back, they come back after the build, beside the proof. The builder did not sign them, so the runner's store
 * must take them unsigned.
 */
export async function copyBack(
  route: { storeUri: string; label: string },
  paths: string[],
  env: NodeJS.ProcessEnv
): Promise<string | undefined> {
  startGroup(`${Phase.CopyBack} from ${route.label}`)
  logInfo(`Copying ${paths.length} output(s) back from ${route.label}: ${paths.join(' ')}`)
  const wanted = paths.filter(path => isStorePath(path, storeDirOf(env)))
  const result = await phase(
    'copy back',
    // The copy of the build's outputs scales with them, as the build does: the job's timeout bounds it.
    runCommand(
      'nix',
      [...NIX_FEATURES, 'copy', '--from', route.storeUri, '--no-check-sigs', '--', ...wanted],
      {
        env,
        track: 'nix copy',
        timeoutMs: 'none'
      }
    )
  )
  if (result.code === 0) return undefined
  return `error: copying the outputs back from '${route.storeUri}' failed: ${stderrTail(result.stderr)}`
}
