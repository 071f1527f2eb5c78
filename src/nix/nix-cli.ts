/**
 * How each Nix spells the commands the action runs, and what they print. The one place that knows which release
 * renamed what, so that a runner or builder on current Nix is never asked for a deprecated alias (each prints a
 * warning from 2.19) and one on old Nix is never asked for a command it lacks.
 */

import { isRecord } from '../base/index.js'
import { nixBeside } from '../inputs/index.js'

/** Runs `nix` with the features the action needs, whatever the runner's config enables. */
export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes']

/** Which `nix` a `--version` line names. */
export interface NixRelease {
  /**
   * Lix forked from Nix 2.18 and numbers its releases 2.90 and up, with its own command set: version rules for Nix
   * do not apply to it. Determinate Nix follows upstream Nix and is reported as 'nix' with its Nix version.
   */
  implementation: 'nix' | 'lix'
  /** e.g. "2.34.8"; empty when the line names none */
  version: string
  /**
   * Determinate Nix's own release, e.g. "3.19.0"; absent for upstream Nix and Lix. Its SSH code is not upstream's
   * of the same Nix version (see multiplexHazard), so a rule about SSH needs this number.
   */
  determinate?: string
}

/**
 * Reads `nix --version` (or `nix-daemon --version`): "nix (Nix) 2.34.8", "nix (Determinate Nix 3.19.0) 2.34.6",
 * "nix (Lix, like Nix) 2.93.0" or "… 2.90-beta.1". Lix 2.92+ prints more lines after the first; only the first
 * counts. The Nix version is the one after the parenthesis: Determinate Nix puts its own version inside it.
 */
export function parseNixVersion(text: string): NixRelease {
  const line = text.trim().split('\n')[0] ?? ''
  const close = line.lastIndexOf(')')
  const version = /(\d+\.\d+(?:\.\d+)?)/.exec(close >= 0 ? line.slice(close + 1) : line)?.[1] ?? ''
  const release: NixRelease = { implementation: /\(Lix\b/.test(line) ? 'lix' : 'nix', version }
  const determinate = /\(Determinate Nix (\d+\.\d+(?:\.\d+)?)/.exec(line)?.[1]
  if (determinate !== undefined) release.determinate = determinate
  return release
}

/** How a log line names the release: "Nix 2.34.8", "Determinate Nix 3.19.0 (Nix 2.34.6)", "Lix 2.93.0". */
export function describeRelease(release: NixRelease): string {
  const version =
    release.version === '' || release.version === 'unknown' ? 'of unknown version' : release.version
  if (release.implementation === 'lix') return `Lix ${version}`
  if (release.determinate !== undefined) return `Determinate Nix ${release.determinate} (Nix ${version})`
  return `Nix ${version}`
}

/** -1, 0 or 1, comparing dotted versions numerically; an unknown version sorts first. */
export function compareVersions(a: string, b: string): number {
  const parts = (version: string): number[] => version.split('.').map(part => Number(part) || 0)
  const [x, y] = [parts(a), parts(b)]
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const difference = (x[i] ?? 0) - (y[i] ?? 0)
    if (difference !== 0) return Math.sign(difference)
  }
  return 0
}

function nixFrom(release: NixRelease, version: string): boolean {
  return release.implementation === 'nix' && compareVersions(release.version, version) >= 0
}

/**
 * The store check, after NIX_FEATURES. `nix store info` exists from Nix 2.19 (docs/nix.md, "Version notes"), which made
 * `nix store ping` a deprecated alias that warns; its `--json` (`{"url":…,"version":…,"trusted":…}`) is the stable
 * form to read. Older Nix and every Lix (2.90–2.95) have only `store ping`, read as text: its `--json` only exists
 * from 2.14. A version that cannot be read gets `ping`, which every Nix so far still accepts.
 */
export function storeInfoArgs(release: NixRelease): string[] {
  return nixFrom(release, '2.19') ? ['store', 'info', '--json'] : ['store', 'ping']
}

/**
 * The config dump, after NIX_FEATURES. `nix config show` exists from Nix 2.20 (docs/nix.md, "Version notes") and in
 * every Lix (2.90–2.95); in both, `show-config` became a deprecated alias that warns. Nix up to 2.19 has only
 * `show-config`.
 */
export function configShowArgs(release: NixRelease): string[] {
  return release.implementation === 'lix' || nixFrom(release, '2.20')
    ? ['config', 'show', '--json']
    : ['show-config', '--json']
}

/**
 * The same rule as a shell command, for a builder whose version is not known before it runs: `config show` first,
 * which Nix up to 2.19 rejects at once ("'config' is not a recognised command"), then `show-config`. Neither form
 * warns on the version that runs it.
 */
export const CONFIG_SHOW_SHELL =
  'nix --extra-experimental-features nix-command config show --json 2>/dev/null || nix --extra-experimental-features nix-command show-config --json 2>/dev/null'

/** What a store check says; `version` and `trusted` only when that Nix reports them. */
export interface StoreInfo {
  url: string
  /** The store's Nix version (the daemon's, or the remote's), from Nix 2.7. */
  version?: string
  /** Whether the store trusts this client, from Nix 2.15. */
  trusted?: boolean
}

/**
 * Reads either form. `nix store info --json` prints JSON on stdout; `trusted` is the number 1 on Debian's 2.26.3 and
 * the boolean true on 2.34.8 (seen; the source writes the same `TrustedFlag` in both), so both are accepted.
 * `nix store ping` prints "Store URL: …", "Version: …" and "Trusted: 1" on stderr.
 */
export function parseStoreInfo(stdout: string, stderr: string): StoreInfo {
  const json = parseJsonObject(stdout)
  if (json !== undefined) {
    const info: StoreInfo = { url: typeof json.url === 'string' ? json.url : '' }
    if (typeof json.version === 'string') info.version = json.version
    if (typeof json.trusted === 'boolean') info.trusted = json.trusted
    if (json.trusted === 0 || json.trusted === 1) info.trusted = json.trusted === 1
    return info
  }
  const text = `${stderr}\n${stdout}`
  const info: StoreInfo = { url: /Store URL:\s*(\S+)/.exec(text)?.[1] ?? '' }
  const version = /Version:\s*(\S+)/.exec(text)?.[1]
  const trusted = /Trusted:\s*([01])/.exec(text)?.[1]
  if (version !== undefined) info.version = version
  if (trusted !== undefined) info.trusted = trusted === '1'
  return info
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  if (!text.trim().startsWith('{')) return undefined
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
    return Object.fromEntries(Object.entries(parsed))
  } catch {
    return undefined
  }
}

/** Settings by name, from `nix config show --json` or `nix show-config --json`. */
export type NixConfig = Record<string, unknown>

export function parseConfigShow(json: string): NixConfig {
  const parsed: unknown = JSON.parse(json)
  const values: NixConfig = {}
  if (typeof parsed !== 'object' || parsed === null) return values
  for (const [name, entry] of Object.entries(parsed)) {
    // Nix 2.8–2.34 print {"name": {"value": …, …}}; some older versions print {"name": value}.
    values[name] = typeof entry === 'object' && entry !== null && 'value' in entry ? entry.value : entry
  }
  return values
}

/** A list setting: an array, or a space-separated string on some versions. */
export function settingList(config: NixConfig, name: string): string[] {
  const value = config[name]
  if (Array.isArray(value)) return value.map(String)
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : []
}

/**
 * Whether Nix builds every check build (`--rebuild`) itself and never hands it to the build hook: from Nix 2.34.0
 * (docs/nix.md, "Version notes": "check and repair modes operate on the state of this store specifically"). Before
 * that, and in Lix, a check build went to a builder when `max-jobs` was 0.
 */
export function checksOnlyLocally(release: NixRelease): boolean {
  return nixFrom(release, '2.34')
}

/**
 * Whether `nix copy` takes `--out-link` (upstream Nix 2.25, NixOS/nix#11657; Determinate Nix follows upstream; Lix
 * forked before it). `nix copy --from <store> --eval-store auto` builds its installables in that store (it realises
 * them in its source store) and copies the outputs here in the same session; the links are what names the outputs,
 * as `nix copy` prints none.
 */
export function copyLinksOutputs(release: NixRelease): boolean {
  return nixFrom(release, '2.25')
}

/** Why SSH connection sharing set up in the ssh config breaks the runner's Nix, with the bug that says so. */
export interface MultiplexHazard {
  /** e.g. "NixOS/nix#8329" */
  bug: string
  /** What goes wrong: a clause that follows the release's name. */
  reason: string
  /** The first release with the fix, named as `describeRelease` names releases. */
  fixedIn: string
}

/**
 * Whether the runner's Nix breaks on the ssh config the action writes with `multiplex` (`ControlMaster auto`, a
 * `ControlPath` and `ControlPersist` in each builder's Host alias), through the build hook (ssh:// and ssh-ng://
 * machines, opened by the daemon, or by `nix` on a single-user install) and the action's own
 * `nix store info --store ssh-ng://…`, which run the same SSH code. Only releases with a reported bug and the code
 * that explains it are listed:
 *
 * - Nix 2.15.x: 2.15.0 made every ssh run `LocalCommand=echo started` and waits for that line. A session through an
 *   existing master never runs LocalCommand, so the second connection to a builder hangs for ever (NixOS/nix#8329).
 *   2.16.0 asks `ssh -O check` first. Up to 2.14 there is no such wait.
 * - Determinate Nix 3.11.0–3.21.x: 3.11.0 raised the default `max-connections` of ssh-ng stores to 64, and the build
 *   hook keeps it (it sets 1 only for ssh://), so each ssh-ng store starts its own master. Up to 3.21.1 it asks
 *   `ssh -O check` without its own socket and never reads "started" from a session, so a master on the ssh config's
 *   ControlPath (left by a plain `ssh` through the alias, or by an ssh:// store, which connects without a master of
 *   its own) makes it skip its master, and the session, becoming a master itself by `ControlMaster auto`, prints
 *   "started" into the protocol: "protocol mismatch, got 'started'" (DeterminateSystems/nix-src#441, reported on
 *   3.19.0). 3.21.2 passes `-S` with its own socket or `none`, which fixes that, but when its master has died a
 *   session re-created by `ControlMaster auto` can still leak "started" (a race); 3.22.0 replaces LocalCommand in
 *   those sessions (nix-src#569). Since 3.21.2 Nix ignores the config's ControlPath anyway, so turning multiplexing
 *   off up to 3.21.x costs nothing there.
 *
 * Not listed: upstream Nix from 2.16. NixOS/nix#14132 ("got 'started'", filed as 2.28.5) needs `max-connections`
 * above 1, which upstream's ssh-ng default and the hook never set: its reporter found it only on Determinate Nix
 * (nix-src#311) and reproduced it upstream with `?max-connections=2` (NixOS/nix#15351). NixOS/nix#10645 is
 * `ControlMaster yes`, not `auto`. Lix up to 2.92 runs upstream 2.18's code; from 2.93 it shares no connections
 * itself and tests remote builds through a `ControlMaster auto` alias. The sources of each: docs/nix.md,
 * "ControlMaster hazards".
 */
export function multiplexHazard(release: NixRelease): MultiplexHazard | undefined {
  if (release.implementation === 'lix') return undefined
  const determinate = release.determinate
  if (determinate !== undefined && between(determinate, '3.11.0', '3.22.0')) {
    return {
      bug: 'DeterminateSystems/nix-src#441',
      reason:
        'fails with "protocol mismatch, got \'started\'" on ssh-ng builders when an SSH master already runs for the ' +
        'builder',
      fixedIn: 'Determinate Nix 3.22.0'
    }
  }
  if (between(release.version, '2.15', '2.16')) {
    return {
      bug: 'NixOS/nix#8329',
      reason: 'waits for ever on every connection that goes through an existing SSH master, so builds hang',
      fixedIn: 'Nix 2.16.0'
    }
  }
  return undefined
}

/** from <= version < to; an unknown version is in no range. */
function between(version: string, from: string, to: string): boolean {
  return version !== '' && compareVersions(version, from) >= 0 && compareVersions(version, to) < 0
}

/**
 * Printing derivations as JSON, after NIX_FEATURES: `nix derivation show` from Nix 2.15 and in Lix, which made
 * `nix show-derivation` an alias; only `show-derivation` before.
 */
export function derivationShowArgs(release: NixRelease): string[] {
  return release.implementation === 'lix' || nixFrom(release, '2.15')
    ? ['derivation', 'show']
    : ['show-derivation']
}

/** One derivation as `nix derivation show` prints it. */
export interface ShownDerivation {
  drvPath: string
  system: string
  /** `requiredSystemFeatures` of its environment. */
  features: string[]
  /** Its outputs' store paths (input-addressed outputs; floating content-addressed ones have none yet). */
  outputs: string[]
}

/**
 * Reads `nix derivation show` / `show-derivation`: up to 2.33 `{"/nix/store/x.drv": {…}}` with full paths; Nix 2.34
 * `{"derivations": {"x.drv": {…}}, "version": 4}` with base names (docs/nix.md, "Version notes").
 */
export function parseDerivationShow(stdout: string, storeDir = '/nix/store'): ShownDerivation[] {
  const parsed: unknown = JSON.parse(stdout)
  if (!isRecord(parsed)) return []
  const table = isRecord(parsed.derivations) ? parsed.derivations : parsed
  const full = (path: string): string => (path.startsWith('/') ? path : `${storeDir}/${path}`)
  const shown: ShownDerivation[] = []
  for (const [path, value] of Object.entries(table)) {
    if (!isRecord(value) || !path.endsWith('.drv')) continue
    const env = isRecord(value.env) ? value.env : {}
    const outputs = isRecord(value.outputs) ? Object.values(value.outputs) : []
    shown.push({
      drvPath: full(path),
      system: typeof value.system === 'string' ? value.system : '',
      features: requiredFeatures(value, env),
      outputs: outputs.flatMap(output =>
        isRecord(output) && typeof output.path === 'string' && output.path !== '' ? [full(output.path)] : []
      )
    })
  }
  return shown
}

/**
 * `nix path-info --json`, after NIX_FEATURES: Nix 2.34 warns "'--json' without '--json-format' is deprecated" and
 * takes `--json-format 1` (docs/nix.md, "Building in the builder's store"); older Nix and Lix have no such option.
 */
export function pathInfoJsonArgs(release: NixRelease): string[] {
  return nixFrom(release, '2.34') ? ['path-info', '--json', '--json-format', '1'] : ['path-info', '--json']
}

/**
 * What `ssh` is given for a builder's store URI (`ssh-ng://user@alias?remote-program=…` → `user@alias`), with the
 * plan's ssh config.
 */
export function sshDestination(storeUri: string): string {
  return storeUri.replace(/^[a-z-]+:\/\//, '').replace(/\?.*$/, '')
}

/** The `nix` to run on a builder over `ssh`: beside its store URI's `remote-program`, else the one on its PATH. */
export function builderNix(storeUri: string): string {
  const program = /[?&]remote-program=([^&]+)/.exec(storeUri)?.[1]
  return program === undefined ? 'nix' : nixBeside(program)
}

/**
 * The output paths at the head of a .drv file in ATerm (`Derive([("out","/nix/store/…-name","",""),…],…`), read
 * without starting `nix`. Undefined for anything else: an output with no path yet (floating content-addressed), or
 * another format; `nix derivation show` reads those.
 */
export function parseDerivationOutputs(text: string): string[] | undefined {
  const head = /^Derive\(\[((?:\("[^"\\]*","[^"\\]*","[^"\\]*","[^"\\]*"\),?)*)\],/.exec(text)
  if (head === null) return undefined
  const paths = [...(head[1] ?? '').matchAll(/\("[^"\\]*","([^"\\]*)",/g)].map(match => match[1] ?? '')
  return paths.length > 0 && paths.every(path => path.startsWith('/')) ? paths : undefined
}

/** What a store says about one of its paths. */
export interface PathInfo {
  path: string
  narSize: number
  deriver?: string
  /** Epoch seconds when the path became valid in that store. */
  registrationTime?: number
  /** Built in that store, not copied into it. */
  ultimate: boolean
}

/** Reads `nix path-info --json`: a list of objects with `path` (Nix 2.8), or an object keyed by path (later). */
export function parsePathInfo(stdout: string): PathInfo[] {
  const parsed: unknown = JSON.parse(stdout)
  const entries: [string, unknown][] = Array.isArray(parsed)
    ? parsed.flatMap((item): [string, unknown][] =>
        isRecord(item) && typeof item.path === 'string' ? [[item.path, item]] : []
      )
    : isRecord(parsed)
      ? Object.entries(parsed)
      : []
  return entries.flatMap(([path, value]) => {
    // null (later Nix) or `"valid": false` (Nix 2.8's list): not valid in that store.
    if (!isRecord(value) || value.valid === false) return []
    const info: PathInfo = {
      path,
      narSize: typeof value.narSize === 'number' ? value.narSize : 0,
      ultimate: value.ultimate === true
    }
    if (typeof value.deriver === 'string') info.deriver = value.deriver
    if (typeof value.registrationTime === 'number') info.registrationTime = value.registrationTime
    return [info]
  })
}

/**
 * `requiredSystemFeatures`: in the environment, or with `__structuredAttrs` in `env.__json` (Nix ≤ 2.33) or the
 * top-level `structuredAttrs` (2.34's v4 format); a list or a space-separated string.
 */
function requiredFeatures(drv: Record<string, unknown>, env: Record<string, unknown>): string[] {
  let structured: unknown = drv.structuredAttrs
  if (!isRecord(structured) && typeof env.__json === 'string') {
    try {
      structured = JSON.parse(env.__json)
    } catch {
      structured = undefined
    }
  }
  const value = isRecord(structured) ? structured.requiredSystemFeatures : env.requiredSystemFeatures
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string')
  return typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : []
}
