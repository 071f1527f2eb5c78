import { derivationName } from './nix-log.js'

export type BuildStatus = 'built' | 'failed' | 'unfinished'

/** Where and when one derivation was built, as proven by Nix's own log. */
export interface BuildRecord {
  drvPath: string
  name: string
  /** The store URI Nix built it on (e.g. ssh-ng://user@alias); empty: built on the runner. */
  machine: string
  /** Epoch milliseconds of the last attempt's start and stop. */
  start: number
  end?: number
  status: BuildStatus
  /** More than 1 when Nix retried, e.g. after a builder failed and it fell back to another machine. */
  attempts: number
}

interface Activity {
  drvPath: string
  /** The builder's own build activity relayed back over ssh-ng: it carries the log lines but is not a build. */
  relayed: boolean
}

/**
 * Which machine built each derivation, from actBuild (105) activities: `fields[0]` is the derivation, `fields[1]` the
 * machine, empty for a local build. Seen on Nix 2.8 with ssh-ng: right after the remote start, the builder's own
 * actBuild arrives relayed with an empty machine for the same derivation; it must not count as a local build.
 */
export class BuildLedger {
  private readonly builds = new Map<string, BuildRecord>()
  private readonly activities = new Map<number, Activity>()

  /** Returns whether the activity is the builder's relayed one rather than a build of its own. */
  startBuild(id: number, drvPath: string, machine: string, time: number): boolean {
    const current = this.builds.get(drvPath)
    const remoteRunning = current !== undefined && current.machine !== '' && current.end === undefined
    if (machine === '' && remoteRunning) {
      this.activities.set(id, { drvPath, relayed: true })
      return true
    }
    this.activities.set(id, { drvPath, relayed: false })
    this.builds.set(drvPath, {
      drvPath,
      name: derivationName(drvPath),
      machine,
      start: time,
      status: 'unfinished',
      attempts: (current?.attempts ?? 0) + 1
    })
    return false
  }

  stop(id: number, time: number): void {
    const activity = this.activities.get(id)
    if (activity === undefined || activity.relayed) return
    const build = this.builds.get(activity.drvPath)
    if (build === undefined || build.end !== undefined) return
    build.end = time
    if (build.status === 'unfinished') build.status = 'built'
  }

  markFailed(drvPath: string): void {
    const build = this.builds.get(drvPath)
    if (build !== undefined) build.status = 'failed'
  }

  /** The derivation an activity (or a relayed one) belongs to, to name its log lines. */
  derivationOf(id: number): string | undefined {
    return this.activities.get(id)?.drvPath
  }

  records(): BuildRecord[] {
    return [...this.builds.values()]
  }
}

/** One store path copied between stores (actCopyPath, 100: fields path, from, to), as the log timed it. */
export interface CopyRecord {
  path: string
  from: string
  to: string
  start: number
  end?: number
}

/** Copies to and from builders, for the canary's transfer figures. */
export class CopyLedger {
  private readonly copies = new Map<number, CopyRecord>()

  startCopy(id: number, path: string, from: string, to: string, time: number): void {
    this.copies.set(id, { path, from, to, start: time })
  }

  stop(id: number, time: number): void {
    const copy = this.copies.get(id)
    if (copy !== undefined && copy.end === undefined) copy.end = time
  }

  records(): CopyRecord[] {
    return [...this.copies.values()]
  }
}
