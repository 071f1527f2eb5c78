import { readFile } from 'node:fs/promises'
import { phase, runCommand, shellQuote } from '../base/index.js'
import type { Settings } from '../inputs/index.js'
import { type BuildOutcome, buildArguments, runNixBuild } from './build.js'
import type { BuildRecord } from './ledger.js'
import { machineLabel } from './progress.js'
import {
  derivationShowArgs,
  NIX_FEATURES,
  type NixRelease,
  parseDerivationOutputs,
  parseDerivationShow,
  parsePathInfo,
  type PathInfo,
  pathInfoJsonArgs,
  type ShownDerivation,
  sshDestination
} from './nix-cli.js'
import type { InstallableNeed, StoreRoute } from './strategy.js'
import { copiesByBuilder, narSizes } from './transfer.js'

/**
 * The `remote-store` strategy (strategy.ts): the build runs in a builder's own store. The runner's `nix` is the SSH
 * client here, not root's nix-daemon, so the SSH settings reach it through NIX_SSHOPTS (`-F <file>`) in `env`, and
 * nothing of root's is touched.
 */

/** How a derivation's place of build was proven. */
export interface StoreProof {
  /** The build activity came over the session with that builder's store. */
  log: boolean
  /** That store says it built the outputs: `ultimate`, deriver = the derivation, registered during this build. */
  store: boolean
  /** What the store said, when it disagreed. */
  problem?: string
}

export interface StoreBuildOutcome extends BuildOutcome {
  /** Per derivation built: the proof from the log and from the builder's store. */
  proofs: Map<string, StoreProof>
  /** The requested outputs copied back to the runner, by builder store URI. */
  copiedBack: Map<string, string[]>
  /** NAR sizes learnt on the way (the builder's store about its outputs, the runner's about what went up). */
  sizes: Map<string, number>
}

/** What the installables need, or why they could not be looked at. */
export interface InstallableLookup {
  needs?: InstallableNeed[]
  /** Why not, for the strategy's reason. */
  problem?: string
}

/**
 * What each installable needs, from its derivation, evaluated on the runner. Nothing may be built on the runner while
 * doing so (`--max-jobs 0`, no builders): an expression that imports from a derivation (IFD) would otherwise have it
 * built here, unseen, and with the build hook that derivation is offloaded like any other.
 */
export async function installableNeeds(
  release: NixRelease,
  settings: Settings,
  env: NodeJS.ProcessEnv,
  oneCall: boolean
): Promise<InstallableLookup> {
  const show = async (installables: string[]): Promise<ShownDerivation[] | string> => {
    const result = await runCommand(
      'nix',
      [
        ...NIX_FEATURES,
        ...derivationShowArgs(release),
        ...evaluationArgs(settings.args),
        '--max-jobs',
        '0',
        '--builders',
        '',
        ...installables
      ],
      { env }
    )
    if (result.code !== 0) {
      return /local builds are disabled|unable to start any build|required to build/i.test(result.stderr)
        ? 'evaluating them needs a derivation built first (import-from-derivation), which the runner would build ' +
            'itself; the build hook offloads it'
        : `evaluating them failed (${result.stderr.trim().split('\n').at(-1) ?? 'no message'})`
    }
    try {
      return parseDerivationShow(result.stdout.toString())
    } catch {
      return 'their derivations could not be read'
    }
  }
  if (oneCall) {
    // One builder: every installable goes there if all fit, so one evaluation says enough.
    const shown = await show(settings.installables)
    if (typeof shown === 'string') return { problem: shown }
    return { needs: shown.map(drv => ({ installable: drv.drvPath, ...need(drv) })) }
  }
  const needs: InstallableNeed[] = []
  for (const installable of settings.installables) {
    const shown = await show([installable])
    if (typeof shown === 'string') return { problem: shown }
    const [drv] = shown
    if (drv === undefined) return { problem: `${installable} names no derivation` }
    needs.push({ installable, ...need(drv) })
  }
  return { needs }
}

/** The user's `args` without those only `nix build` takes (out-links, output printing), which `derivation show` refuses. */
function evaluationArgs(args: string[]): string[] {
  const kept: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? ''
    if (arg === '-o' || arg === '--out-link') {
      i++
      continue
    }
    if (/^(--no-link|--json|--print-out-paths|--print-build-logs|-L|--out-link=.*)$/.test(arg)) continue
    kept.push(arg)
  }
  return kept
}

function need(drv: ShownDerivation): Omit<InstallableNeed, 'installable'> {
  return { drvPath: drv.drvPath, system: drv.system, features: drv.features }
}

/**
 * Builds each route's installables in that builder's store, one builder after the other, then proves each derivation
 * from the builder's store and copies the requested outputs back (unless `copy-back` is false).
 */
export async function buildInStores(
  release: NixRelease,
  settings: Settings,
  routes: StoreRoute[],
  maxJobs: (storeUri: string) => number,
  env: NodeJS.ProcessEnv
): Promise<StoreBuildOutcome> {
  const outcome: StoreBuildOutcome = {
    exitCode: 0,
    builds: [],
    outPaths: [],
    messages: [],
    lastLines: new Map(),
    copies: [],
    proofs: new Map(),
    copiedBack: new Map(),
    sizes: new Map()
  }
  for (const route of routes) {
    const started = Date.now()
    const one = await phase('nix build --store', buildInStore(settings, route, maxJobs(route.storeUri), env))
    outcome.builds.push(...one.builds)
    outcome.outPaths.push(...one.outPaths)
    outcome.messages.push(...one.messages)
    outcome.copies.push(...one.copies)
    for (const [drv, lines] of one.lastLines) outcome.lastLines.set(drv, lines)
    if (one.exitCode !== 0) {
      outcome.exitCode = one.exitCode
      break
    }
    // The proof, the copy back and the sizes of what went up are independent: over a shared connection they overlap.
    const copying =
      settings.copyBack && one.outPaths.length > 0
        ? phase('copy back', copyBack(route.storeUri, one.outPaths, env))
        : undefined
    const sent = copiesByBuilder(one.copies, [route.storeUri]).get(route.storeUri)?.sent ?? new Set<string>()
    const sizing = narSizes([...sent], env)
    const { proofs, sizes } = await phase(
      'proof from the store',
      proveInStore(release, route.storeUri, one.builds, started, env)
    )
    for (const [drv, proof] of proofs) outcome.proofs.set(drv, proof)
    for (const [path, size] of [...sizes, ...(await sizing)]) outcome.sizes.set(path, size)
    if (copying !== undefined) {
      const copied = await copying
      if (copied !== undefined) {
        outcome.exitCode = 1
        outcome.messages.push(copied)
        break
      }
      outcome.copiedBack.set(route.storeUri, one.outPaths)
    }
  }
  return outcome
}

/** `nix build --store <builder> --eval-store auto`: the runner evaluates, the builder's daemon builds the graph. */
async function buildInStore(
  settings: Settings,
  route: StoreRoute,
  maxJobs: number,
  env: NodeJS.ProcessEnv
): Promise<BuildOutcome> {
  // The builder's daemon builds: `-j` (the client's max-jobs) reaches it for this session (NIX-FACTS.md).
  const args = buildArguments({
    ...settings,
    installables: route.installables,
    localJobs: maxJobs
  })
  const build = args.indexOf('build')
  args.splice(build + 1, 0, '--store', route.storeUri, '--eval-store', 'auto')
  // The builder's daemon builds with an empty machine name (below): the progress line names it after the builder.
  const outcome = await runNixBuild(args, env, { local: machineLabel(route.storeUri) })
  // Every build of this session ran in the builder's store: its daemon's activities come back relayed, with an empty
  // machine name as for any build local to that store (seen on 2.8 and 2.34).
  const builds: BuildRecord[] = outcome.builds.map(record => ({
    ...record,
    machine: record.machine === '' ? route.storeUri : record.machine
  }))
  return { ...outcome, builds }
}

/**
 * Asks the builder's store about each built derivation's outputs: `ultimate` (built there, not copied in), the
 * deriver, and a registration time inside this build's window (a minute's slack for the two clocks).
 */
async function proveInStore(
  release: NixRelease,
  storeUri: string,
  builds: BuildRecord[],
  started: number,
  env: NodeJS.ProcessEnv
): Promise<{ proofs: Map<string, StoreProof>; sizes: Map<string, number> }> {
  const proofs = new Map<string, StoreProof>()
  const built = builds.filter(build => build.status === 'built')
  if (built.length === 0) return { proofs, sizes: new Map() }
  const outputsOf = await derivationOutputs(
    release,
    built.map(build => build.drvPath),
    env
  )
  const outputs = [...outputsOf.values()].flat()
  const byPath = new Map(
    (await builderPathInfo(release, storeUri, outputs, env)).map(info => [info.path, info])
  )
  const window = { from: started / 1000 - 60, to: Date.now() / 1000 + 60 }
  for (const build of built) {
    const paths = outputsOf.get(build.drvPath) ?? []
    const problems: string[] = []
    if (paths.length === 0) problems.push('its outputs could not be read')
    for (const path of paths) {
      const info = byPath.get(path)
      if (info === undefined) problems.push(`${path} is not valid in ${storeUri}`)
      else if (!info.ultimate) problems.push(`${path} was copied into ${storeUri}, not built there`)
      else if (info.deriver !== undefined && info.deriver !== build.drvPath)
        problems.push(`${path} was built there by ${info.deriver}`)
      else if (
        info.registrationTime !== undefined &&
        (info.registrationTime < window.from || info.registrationTime > window.to)
      )
        problems.push(`${path} was registered there before this build`)
    }
    const proof: StoreProof = { log: build.machine === storeUri, store: problems.length === 0 }
    if (problems.length > 0) proof.problem = problems.join('; ')
    proofs.set(build.drvPath, proof)
  }
  return { proofs, sizes: new Map([...byPath].map(([path, info]) => [path, info.narSize])) }
}

/**
 * `nix path-info --json` of `paths` in the builder's store, asked there through the SSH connection (`ssh` with the
 * plan's config, over its master): one `nix` on the builder, instead of one here and a `nix-daemon --stdio` there
 * (lab, Nix 2.8: 32 ms against 55). Over ssh-ng when that fails, e.g. with no `nix` on the builder user's PATH.
 */
export async function builderPathInfo(
  release: NixRelease,
  storeUri: string,
  paths: string[],
  env: NodeJS.ProcessEnv
): Promise<PathInfo[]> {
  if (paths.length === 0) return []
  const sshOptions = (env.NIX_SSHOPTS ?? '').split(/\s+/).filter(word => word !== '')
  // ssh hands the builder's shell one line: each word quoted for it (a store path may hold `?`).
  const remote = ['nix', '--extra-experimental-features', 'nix-command', 'path-info', '--json', ...paths]
  const there = await runCommand(
    'ssh',
    [...sshOptions, sshDestination(storeUri), remote.map(shellQuote).join(' ')],
    {
      env
    }
  )
  const read = (stdout: Buffer): PathInfo[] | undefined => {
    try {
      return parsePathInfo(stdout.toString())
    } catch {
      return undefined
    }
  }
  const found = there.code === 0 ? read(there.stdout) : undefined
  if (found !== undefined) return found
  const here = await runCommand(
    'nix',
    [...NIX_FEATURES, ...pathInfoJsonArgs(release), '--store', storeUri, ...paths],
    { env }
  )
  return here.code === 0 ? (read(here.stdout) ?? []) : []
}

/**
 * Each derivation's output paths: read from its .drv file in the runner's store (the eval store, where the build
 * wrote it), which takes no `nix` process; `nix derivation show` for those a file does not tell.
 */
async function derivationOutputs(
  release: NixRelease,
  drvPaths: string[],
  env: NodeJS.ProcessEnv
): Promise<Map<string, string[]>> {
  const outputsOf = new Map<string, string[]>()
  await Promise.all(
    drvPaths.map(async drv => {
      const outputs = await readFile(drv, 'utf8').then(parseDerivationOutputs, () => undefined)
      if (outputs !== undefined) outputsOf.set(drv, outputs)
    })
  )
  const unread = drvPaths.filter(drv => !outputsOf.has(drv))
  if (unread.length === 0) return outputsOf
  const shown = await runCommand('nix', [...NIX_FEATURES, ...derivationShowArgs(release), ...unread], { env })
  if (shown.code === 0) {
    for (const drv of parseDerivationShow(shown.stdout.toString())) outputsOf.set(drv.drvPath, drv.outputs)
  }
  return outputsOf
}

/** Brings the requested outputs back; the builder did not sign them, so the runner's store must take them unsigned. */
async function copyBack(
  storeUri: string,
  paths: string[],
  env: NodeJS.ProcessEnv
): Promise<string | undefined> {
  const result = await runCommand(
    'nix',
    [...NIX_FEATURES, 'copy', '--from', storeUri, '--no-check-sigs', ...paths],
    { env }
  )
  if (result.code === 0) return undefined
  const last = result.stderr.trim().split('\n').slice(-3).join(' / ')
  return `error: copying the outputs back from '${storeUri}' failed: ${last}`
}
