import { stat } from 'node:fs/promises'
import { runCommand } from '../base/index.js'
import type { CopyRecord } from './ledger.js'
import { isStorePath, storeDirOf } from './nix-log.js'

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
