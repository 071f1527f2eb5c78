/**
 * How each Nix spells the commands the action runs, and what they print. The one place that knows which release
 * renamed what, so that a runner or builder on current Nix is never asked for a deprecated alias (each prints a
 * warning from 2.19) and one on old Nix is never asked for a command it lacks.
 */

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
  return { implementation: /\(Lix\b/.test(line) ? 'lix' : 'nix', version }
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
 * The store check, after NIX_FEATURES. `nix store info` exists from Nix 2.19 (NixOS/nix b4b1a07f97), which made
 * `nix store ping` a deprecated alias that warns; its `--json` (`{"url":…,"version":…,"trusted":…}`) is the stable
 * form to read. Older Nix and every Lix (2.90–2.95) have only `store ping`, read as text: its `--json` only exists
 * from 2.14. A version that cannot be read gets `ping`, which every Nix so far still accepts.
 */
export function storeInfoArgs(release: NixRelease): string[] {
  return nixFrom(release, '2.19') ? ['store', 'info', '--json'] : ['store', 'ping']
}

/**
 * The config dump, after NIX_FEATURES. `nix config show` exists from Nix 2.20 (NixOS/nix f300e11b05) and in every Lix
 * (2.90–2.95); in both, `show-config` became a deprecated alias that warns. Nix up to 2.19 has only `show-config`.
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
 * (NixOS/nix 7cd4359a8b, #15266: "check and repair modes operate on the state of this store specifically"). Before
 * that, and in Lix, a check build went to a builder when `max-jobs` was 0.
 */
export function checksOnlyLocally(release: NixRelease): boolean {
  return nixFrom(release, '2.34')
}
