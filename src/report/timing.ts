import type { BuildRecord } from '../nix/index.js'

/**
 * Time accounted per derivation (docs/nix.md, "Time per derivation"). A figure is absent when the log does not give
 * it; a phase in `shared` was one transfer for several derivations and is not split among them.
 */
export interface DerivationTiming {
  /** "copying dependencies to 'M'": start to stop, and the NAR bytes its copies reported. */
  uploadMs?: number
  uploadBytes?: number
  /** From the hook's build start on the builder to the builder's own build start, less the upload. */
  waitMs?: number
  /** The build proper: the builder's own build activity, or the runner's. */
  buildMs?: number
  /** "copying outputs from 'M'": start to stop, and the NAR bytes its copies reported. */
  downloadMs?: number
  downloadBytes?: number
  shared?: ('upload' | 'download')[]
}

/** What the offload added to the derivations' building, summed over the derivations whose figures are known. */
export interface OffloadOverhead {
  uploadMs: number
  waitMs: number
  downloadMs: number
  buildMs: number
  /** Derivations with a figure unknown or shared, left out of the sums. */
  uncounted: number
}

/** A build on the runner: no copy, and no wait for a builder. */
const NOTHING_OFFLOADED: DerivationTiming = {
  uploadMs: 0,
  uploadBytes: 0,
  waitMs: 0,
  downloadMs: 0,
  downloadBytes: 0
}

/** One derivation's timing; `remoteStore`: the build ran in a builder's store, copied there and back in one go. */
export function derivationTiming(build: BuildRecord, remoteStore: boolean): DerivationTiming {
  const span = build.end === undefined ? undefined : build.end - build.start
  if (remoteStore) return withBuild({ shared: ['upload', 'download'] }, span)
  if (build.machine === '') return withBuild(NOTHING_OFFLOADED, span)
  const phases = build.phases
  const timing: DerivationTiming = {}
  const upload = phases?.upload
  if (upload?.end !== undefined) timing.uploadMs = upload.end - upload.start
  if (upload?.end !== undefined && upload.bytes !== undefined) timing.uploadBytes = upload.bytes
  const download = phases?.download
  if (download?.end !== undefined) timing.downloadMs = download.end - download.start
  if (download?.end !== undefined && download.bytes !== undefined) timing.downloadBytes = download.bytes
  const remote = phases?.remote
  if (remote !== undefined) {
    if (remote.end !== undefined) timing.buildMs = remote.end - remote.start
    if (timing.uploadMs !== undefined)
      timing.waitMs = Math.max(0, remote.start - build.start - timing.uploadMs)
  } else if (build.status === 'built' && build.end !== undefined && upload?.end !== undefined) {
    // No relayed build (the ssh:// protocol relays none): the build is what lies between the upload and the download.
    timing.buildMs = (download?.start ?? build.end) - upload.end
  }
  if (phases !== undefined && phases.shared.length > 0) timing.shared = [...phases.shared]
  return timing
}

function withBuild(timing: DerivationTiming, buildMs: number | undefined): DerivationTiming {
  return buildMs === undefined ? timing : { ...timing, buildMs }
}

/**
 * Summed, not along the critical path: the log names no derivation's inputs, so which waits delayed the end is not
 * known. Derivations built in parallel each add theirs.
 */
export function offloadOverhead(timings: readonly DerivationTiming[]): OffloadOverhead {
  const sums: OffloadOverhead = { uploadMs: 0, waitMs: 0, downloadMs: 0, buildMs: 0, uncounted: 0 }
  for (const timing of timings) {
    const { uploadMs, waitMs, downloadMs, buildMs } = timing
    if (buildMs === undefined || uploadMs === undefined || downloadMs === undefined || waitMs === undefined) {
      sums.uncounted += 1
      continue
    }
    sums.uploadMs += uploadMs
    sums.waitMs += waitMs
    sums.downloadMs += downloadMs
    sums.buildMs += buildMs
  }
  return sums
}
