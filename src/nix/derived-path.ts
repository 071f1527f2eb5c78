/**
 * What an installable names once evaluated: a derivation and the outputs selected from it (Nix's `DerivedPath::Built`),
 * as `nix build --dry-run --json` prints them, and how each Nix takes them back on its command line, so that a build
 * from them evaluates nothing again.
 */

import { isRecord } from '../base/index.js'
import { compareVersions, type NixRelease } from './nix-cli.js'
import { DEFAULT_STORE_DIR, isStorePath } from './nix-log.js'

/** One derivation and the outputs an installable selected from it. */
export interface SelectedOutputs {
  drvPath: string
  /** Output names, never empty. */
  outputs: string[]
}

/** An output's name as Nix allows it: the characters of a store path's name, so it is safe in a Nix string. */
const OUTPUT_NAME = /^(?!\.)[A-Za-z0-9+\-._?=]{1,211}$/

/**
 * Reads `nix build --dry-run --json`: `[{"drvPath": …, "outputs": {"out": "/nix/store/…", …}}]` in the installables'
 * order, each entry one derivation with exactly the outputs `nix build` would build of it (the same shape from 2.8 to
 * 2.34; an output's path is null while a content-addressed derivation has none). Entries that are not a derivation in
 * `storeDir` with well-formed output names are left out: they reach a command line next. Undefined for anything
 * that is not such a list.
 */
export function parseDryRun(stdout: string, storeDir = DEFAULT_STORE_DIR): SelectedOutputs[] | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(stdout)
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed)) return undefined
  return parsed.flatMap((entry: unknown): SelectedOutputs[] => {
    if (!isRecord(entry) || !isRecord(entry.outputs) || typeof entry.drvPath !== 'string') return []
    const { drvPath } = entry
    const outputs = Object.keys(entry.outputs)
    const valid =
      drvPath.endsWith('.drv') &&
      isStorePath(drvPath, storeDir) &&
      outputs.length > 0 &&
      outputs.every(output => OUTPUT_NAME.test(output))
    return valid ? [{ drvPath, outputs }] : []
  })
}

/**
 * The command-line tail that builds exactly `selected`, one installable per entry in their order (so out-links are
 * numbered as a build of the original installables numbers them), without evaluating them again.
 *
 * Nix 2.13 and later, and every Lix (forked from 2.18), parse `<drv>^<output>,…` as an installable (2.13's release
 * notes; ExtendedOutputsSpec in installables.cc) and only parse the path, so the .drv needs to exist only in the eval
 * store, whence the building store's buildPaths copies it.
 * Up to 2.12 a store path installable has no output selector (`!` is the separator of `nix-store -r` and of
 * DerivedPath::to_string only), and a bare `.drv` is read from the building store, where it is not yet: an `--expr`
 * of derivation-shaped attribute sets naming the .drv does it instead. Its evaluation reads no file; 2.8 selects by
 * `outputName`, 2.9–2.12 by `outputs`, so each set has both, one set per output, and Nix groups them by derivation.
 */
export function derivedPathArgs(release: NixRelease, selected: SelectedOutputs[]): string[] {
  const caret = release.implementation === 'lix' || compareVersions(release.version, '2.13') >= 0
  if (caret) {
    return selected.map(({ drvPath, outputs }) => `${drvPath}^${outputs.join(',')}`)
  }
  const entry = ({ drvPath, outputs }: SelectedOutputs): string => {
    const name = drvPath.replace(/^.*\/[^-/]*-/, '').replace(/\.drv$/, '')
    const sets = outputs.map(
      output =>
        `{ type = "derivation"; name = "${name}"; drvPath = "${drvPath}"; ` +
        `outputName = "${output}"; outputs = [ "${output}" ]; }`
    )
    return `[ ${sets.join(' ')} ]`
  }
  return ['--expr', `[ ${selected.map(entry).join(' ')} ]`, ...selected.map((_, index) => String(index))]
}
