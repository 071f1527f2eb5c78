import { readFile, stat } from 'node:fs/promises'
import { runCommand, shellQuote } from '../base/index.js'
import type { BuildRecord, CopyRecord } from './ledger.js'
import {
  builderNix,
  derivationShowArgs,
  NIX_FEATURES,
  type NixRelease,
  parseDerivationOutputs,
  parseDerivationShow,
  parsePathInfo,
  type PathInfo,
  pathInfoJsonArgs,
  sshDestination
} from './nix-cli.js'
import { isStorePath, storeDirOf } from './nix-log.js'
import type { BuilderAccess } from '../inputs/index.js'

/**
 * What the stores say of the paths a build made or moved: the second source of the remote-store strategy's proof
 * (store-build.ts), what the builder's own store says of each output it built; and the bytes that went to and came
 * from each builder, as NAR sizes.
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

/** What the builder's store says of some derivations' outputs: what disagrees with a build there, per derivation. */
export interface StoreAnswer {
  problems: Map<string, string[]>
  /** NAR sizes of the outputs, by path. */
  sizes: Map<string, number>
}

/** How the builder's store is asked about paths. */
export interface PathInfoRoute {
  /** A `nix path-info` started on the builder before the question (startPathInfo), which answers first when it can. */
  early?: PathInfoAsker
  /**
   * False when the builder's key runs only nix-daemon (a forced command): a shell command there would start that
   * daemon, which waits for its protocol, so the runner's `nix` asks over ssh-ng at once.
   */
  shell?: boolean
  /**
   * The store the derivations are in when it is not the runner's: the builder's, when the builder evaluated them
   * (builder-eval.ts). Their outputs are then read from there.
   */
  derivationStore?: string
}

/**
 * Asks the builder's store about each derivation's outputs: `ultimate` (built there, not copied in), the deriver, and
 * a registration time inside this build's window, which began at `started` (a minute's slack for the two clocks).
 */
export async function askBuilderStore(
  release: NixRelease,
  storeUri: string,
  drvPaths: string[],
  started: number,
  env: NodeJS.ProcessEnv,
  route: PathInfoRoute = {}
): Promise<StoreAnswer> {
  const answer: StoreAnswer = { problems: new Map(), sizes: new Map() }
  if (drvPaths.length === 0) return answer
  const outputsOf = await derivationOutputs(release, drvPaths, env, route.derivationStore)
  const outputs = [...outputsOf.values()].flat()
  const byPath = new Map(
    (await builderPathInfo(release, storeUri, outputs, env, route)).map(info => [info.path, info])
  )
  const window = { from: started / 1000 - 60, to: Date.now() / 1000 + 60 }
  for (const drvPath of drvPaths) {
    const paths = outputsOf.get(drvPath) ?? []
    const problems: string[] = []
    if (paths.length === 0) problems.push('its outputs could not be read')
    for (const path of paths) {
      const info = byPath.get(path)
      if (info === undefined) problems.push(`${path} is not valid in ${storeUri}`)
      else if (!info.ultimate) problems.push(`${path} was copied into ${storeUri}, not built there`)
      else if (info.deriver !== undefined && info.deriver !== drvPath)
        problems.push(`${path} was built there by ${info.deriver}`)
      else if (
        info.registrationTime !== undefined &&
        (info.registrationTime < window.from || info.registrationTime > window.to)
      )
        problems.push(`${path} was registered there before this build`)
    }
    answer.problems.set(drvPath, problems)
  }
  for (const [path, info] of byPath) answer.sizes.set(path, info.narSize)
  return answer
}

/**
 * The proof of each derivation built (`builds`, from the log) in the store at `storeUri`, from the log and from what
 * that store said (`answer`); a derivation it was not asked about has no proof from the store.
 */
export function storeProofs(
  storeUri: string,
  builds: BuildRecord[],
  answer: StoreAnswer
): Map<string, StoreProof> {
  const proofs = new Map<string, StoreProof>()
  for (const build of builds.filter(record => record.status === 'built')) {
    const problems = answer.problems.get(build.drvPath) ?? ["the builder's store was not asked about it"]
    const proof: StoreProof = { log: build.machine === storeUri, store: problems.length === 0 }
    if (problems.length > 0) proof.problem = problems.join('; ')
    proofs.set(build.drvPath, proof)
  }
  return proofs
}

/**
 * A `nix path-info --json --stdin` started on the builder (through the SSH master) before its question is known, so
 * that the proof waits for no `nix` start there: started as the remote-store build begins, asked once the builds are
 * over. Nix reads installables from stdin from 2.19; an older builder's
 * `nix` refuses the option, and builderPathInfo then asks as before.
 */
export interface PathInfoAsker {
  /** Hands it the paths (once): what it answered, or undefined when it could not. */
  ask: (paths: string[]) => Promise<PathInfo[] | undefined>
  /** Ends it unasked (the build failed): its stdin closes empty. */
  cancel: () => void
}

/**
 * How the proof asks the builder at `storeUri`: with a path-info started now (`start`) when its key runs shell
 * commands; over ssh-ng alone when it runs only nix-daemon, which any shell command would start instead.
 */
export function pathInfoRoute(
  storeUri: string,
  env: NodeJS.ProcessEnv,
  options: { start: boolean; access: BuilderAccess | undefined }
): PathInfoRoute {
  if (options.access !== undefined && options.access !== 'shell') return { shell: false }
  return options.start ? { early: startPathInfo(storeUri, env), shell: true } : { shell: true }
}

export function startPathInfo(storeUri: string, env: NodeJS.ProcessEnv): PathInfoAsker {
  let hand: (text: string) => void = () => undefined
  const input = new Promise<string>(resolve => (hand = resolve))
  const running = runCommand(
    'ssh',
    [...sshOptionsOf(env), sshDestination(storeUri), remotePathInfo(storeUri, ['--stdin'])],
    { env, input, track: 'ssh nix path-info' }
  ).catch(() => undefined)
  return {
    ask: async paths => {
      hand(paths.map(path => `${path}\n`).join(''))
      const result = await running
      return result?.code === 0 ? readPathInfo(result.stdout, storeDirOf(env)) : undefined
    },
    cancel: () => hand('')
  }
}

/**
 * `nix path-info --json` of `paths` in the builder's store, asked there through the SSH connection (`ssh` with the
 * plan's config, over its master): one `nix` on the builder, instead of one here and a `nix-daemon --stdio` there
 * (bench/README.md, "Figures behind choices in the code"). `route.early`, a PathInfoAsker, answers first when it
 * can. Over ssh-ng when neither can (e.g. with no `nix` on the builder user's PATH), or at once when the builder's
 * key runs no shell command.
 */
export async function builderPathInfo(
  release: NixRelease,
  storeUri: string,
  paths: string[],
  env: NodeJS.ProcessEnv,
  route: PathInfoRoute = {}
): Promise<PathInfo[]> {
  const storeDir = storeDirOf(env)
  const asking = paths.filter(path => isStorePath(path, storeDir))
  if (asking.length === 0) return []
  const asked = route.shell === false ? undefined : await route.early?.ask(asking)
  if (asked !== undefined) return asked
  if (route.shell !== false) {
    const there = await runCommand(
      'ssh',
      [...sshOptionsOf(env), sshDestination(storeUri), remotePathInfo(storeUri, ['--', ...asking])],
      { env }
    )
    const found = there.code === 0 ? readPathInfo(there.stdout, storeDir) : undefined
    if (found !== undefined) return found
  }
  const here = await runCommand(
    'nix',
    [...NIX_FEATURES, ...pathInfoJsonArgs(release), '--store', storeUri, '--', ...asking],
    { env }
  )
  return here.code === 0 ? (readPathInfo(here.stdout, storeDir) ?? []) : []
}

/** The ssh options Nix is given (NIX_SSHOPTS: `-F <the plan's config>`), for an `ssh` of the action's own. */
export function sshOptionsOf(env: NodeJS.ProcessEnv): string[] {
  return (env.NIX_SSHOPTS ?? '').split(/\s+/).filter(word => word !== '')
}

/**
 * `nix path-info --json` with `words`, as the one line ssh hands the builder's shell: each word quoted for it. With
 * `remote-program` set, the `nix` beside it; when there is none, the ssh-ng fallback still reaches the store.
 */
function remotePathInfo(storeUri: string, words: string[]): string {
  return [
    builderNix(storeUri),
    '--extra-experimental-features',
    'nix-command',
    'path-info',
    '--json',
    ...words
  ]
    .map(shellQuote)
    .join(' ')
}

/**
 * What `nix path-info --json` printed, or undefined when it is no such answer (a greeting, an error). The builder
 * answers: what it names that is no store path is left out, and a deriver that is none is not believed.
 */
function readPathInfo(stdout: Buffer, storeDir: string): PathInfo[] | undefined {
  let infos: PathInfo[]
  try {
    infos = parsePathInfo(stdout.toString())
  } catch {
    return undefined
  }
  return infos
    .filter(info => isStorePath(info.path, storeDir))
    .map(info => {
      if (info.deriver === undefined || isStorePath(info.deriver, storeDir)) return info
      const believed: PathInfo = { ...info }
      delete believed.deriver
      return believed
    })
}

/**
 * Each derivation's output paths: read from its .drv file in the runner's store (the eval store, where the build
 * wrote it), which takes no `nix` process; `nix derivation show` for those a file does not tell, and for all of them
 * when they are in another store (`store`), which the runner's `nix` reads over the connection.
 */
async function derivationOutputs(
  release: NixRelease,
  drvPaths: string[],
  env: NodeJS.ProcessEnv,
  store?: string
): Promise<Map<string, string[]>> {
  const outputsOf = new Map<string, string[]>()
  const storeDir = storeDirOf(env)
  const stored = drvPaths.filter(drv => isStorePath(drv, storeDir))
  if (store === undefined) {
    await Promise.all(
      stored.map(async drv => {
        const outputs = await readFile(drv, 'utf8').then(parseDerivationOutputs, () => undefined)
        if (outputs !== undefined) outputsOf.set(drv, outputs)
      })
    )
  }
  const unread = stored.filter(drv => !outputsOf.has(drv))
  if (unread.length === 0) return outputsOf
  const where = store === undefined ? [] : ['--store', store]
  const shown = await runCommand(
    'nix',
    [...NIX_FEATURES, ...derivationShowArgs(release), ...where, '--', ...unread],
    { env }
  )
  if (shown.code === 0) {
    for (const drv of parseDerivationShow(shown.stdout.toString(), storeDir))
      outputsOf.set(
        drv.drvPath,
        drv.outputs.filter(path => isStorePath(path, storeDir))
      )
  }
  return outputsOf
}

/** Bytes (NAR sizes) that went to and came from one builder during the build. */
export interface Transfer {
  sent: number
  received: number
}

/**
 * Which store paths went to or came from each builder, from Nix's copy activities (type 100: path, from, to). A copy
 * whose store name is not a builder's URI (Nix 2.26 names a bare "ssh-ng://") goes to the only builder, if there is one.
 */
export function copiesByBuilder(
  copies: readonly CopyRecord[],
  storeUris: readonly string[]
): Map<string, { sent: Set<string>; received: Set<string> }> {
  const byBuilder = new Map(
    storeUris.map(uri => [uri, { sent: new Set<string>(), received: new Set<string>() }])
  )
  const only = storeUris.length === 1 ? storeUris[0] : undefined
  // Nix names a store in its copy activities without the URI's settings (`?remote-program=…`).
  const withoutSettings = (uri: string): string => uri.replace(/\?.*$/, '')
  const byName = new Map(storeUris.map(uri => [withoutSettings(uri), uri]))
  const builderOf = (store: string): string | undefined =>
    byName.get(withoutSettings(store)) ??
    (only !== undefined && /^[a-z-]+:\/\//.test(store) ? only : undefined)
  for (const copy of copies) {
    const to = builderOf(copy.to)
    const from = builderOf(copy.from)
    if (to !== undefined) byBuilder.get(to)?.sent.add(copy.path)
    else if (from !== undefined) byBuilder.get(from)?.received.add(copy.path)
  }
  return byBuilder
}

/**
 * The bytes each builder sent and received, as NAR sizes: from `known` (e.g. what the builder's store said of its
 * outputs), else from the runner's own store: every path sent was there, and every path received is there now
 * (`alsoReceived`: outputs copied back outside the build's log, by `nix copy`).
 */
export async function transferBytes(
  copies: readonly CopyRecord[],
  storeUris: readonly string[],
  alsoReceived: ReadonlyMap<string, readonly string[]>,
  env: NodeJS.ProcessEnv,
  known: ReadonlyMap<string, number> = new Map()
): Promise<Map<string, Transfer>> {
  const byBuilder = copiesByBuilder(copies, storeUris)
  for (const [uri, paths] of alsoReceived) for (const path of paths) byBuilder.get(uri)?.received.add(path)
  const all = [...new Set([...byBuilder.values()].flatMap(entry => [...entry.sent, ...entry.received]))]
  const sizes = new Map([
    ...known,
    ...(await narSizes(
      all.filter(path => !known.has(path)),
      env
    ))
  ])
  const sum = (paths: Set<string>): number =>
    [...paths].reduce((total, path) => total + (sizes.get(path) ?? 0), 0)
  return new Map(
    [...byBuilder].map(([uri, entry]) => [uri, { sent: sum(entry.sent), received: sum(entry.received) }])
  )
}

/**
 * The NAR sizes of paths in the runner's store; those it cannot tell are left out. A derivation's is its file's size
 * in the archive's framing (no `nix-store` started for what went up in a small build, the derivations alone).
 */
export async function narSizes(
  paths: readonly string[],
  env: NodeJS.ProcessEnv
): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  const storeDir = storeDirOf(env)
  const stored = paths.filter(path => isStorePath(path, storeDir))
  await Promise.all(
    stored
      .filter(path => path.endsWith('.drv'))
      .map(async path => {
        const file = await stat(path).catch(() => undefined)
        if (file?.isFile() === true && (file.mode & 0o111) === 0)
          sizes.set(path, regularFileNarSize(file.size))
      })
  )
  const rest = stored.filter(path => !sizes.has(path))
  if (rest.length === 0) return sizes
  // `nix-store --query --size`, not `nix path-info`: Nix 2.8's path-info takes a .drv path for its outputs.
  const result = await runCommand('nix-store', ['--query', '--size', '--', ...rest], { env })
  if (result.code === 0) {
    const lines = result.stdout.toString().trim().split('\n')
    rest.forEach((path, index) => sizes.set(path, Number(lines[index]) || 0))
  }
  return sizes
}

/**
 * The NAR size of a regular, non-executable file of `bytes` bytes (a .drv): the archive's framing, 112 bytes (the
 * strings "nix-archive-1", "(", "type", "regular", "contents" and ")", each after its 8-byte length and padded to 8
 * bytes, and the contents' length), and the contents padded to 8 bytes.
 */
export function regularFileNarSize(bytes: number): number {
  return 112 + Math.ceil(bytes / 8) * 8
}
