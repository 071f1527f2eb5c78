import { vi } from 'vitest'

/** A group of the log as the runner folds it: its title, and every line in it. */
export interface LoggedGroup {
  title: string
  lines: string[]
}

/** What a step printed, read as the runner reads it. */
export interface LogLayout {
  groups: LoggedGroup[]
  /** Lines outside every group, annotations among them. */
  outside: string[]
  /** The annotation lines (`::error`, `::warning`, `::notice`), every one outside the groups. */
  annotations: string[]
}

const ANNOTATION = /^::(?:error|warning|notice)(?: [^:]*)?::/

/**
 * Reads what a step wrote as the runner reads it, and throws where GitHub would show it wrongly: a group opened inside
 * another (GitHub does not nest them), an end with no group, a group left open, an annotation inside a group, or a
 * group command or annotation where commands are stopped (it would be printed as text).
 */
export function readLayout(written: string): LogLayout {
  const layout: LogLayout = { groups: [], outside: [], annotations: [] }
  let group: LoggedGroup | undefined
  let stopped: string | undefined
  const fail = (why: string): never => {
    throw new Error(`${why}, in:\n${written}`)
  }
  for (const raw of written.split(/\r\n|\r|\n/).slice(0, -1)) {
    const line = raw.trimStart()
    const into = group?.lines ?? layout.outside
    if (stopped !== undefined) {
      if (line === `::${stopped}::`) stopped = undefined
      else if (/^::(?:group|endgroup)::/.test(line) || ANNOTATION.test(line))
        fail(`"${line}" comes where commands are stopped`)
      into.push(raw)
      continue
    }
    const title = /^::group::(.*)$/.exec(line)?.[1]
    if (title !== undefined) {
      if (group !== undefined) fail(`group "${title}" opens inside "${group.title}"`)
      group = { title, lines: [] }
      layout.groups.push(group)
    } else if (line === '::endgroup::') {
      if (group === undefined) fail('an end of a group that is not open')
      group = undefined
    } else if (ANNOTATION.test(line)) {
      if (group !== undefined) fail(`"${line}" is inside the group "${group.title}"`)
      layout.annotations.push(raw)
      layout.outside.push(raw)
    } else {
      stopped = /^::stop-commands::(.+)$/.exec(line)?.[1]
      into.push(raw)
    }
  }
  if (stopped !== undefined) fail('commands are never resumed')
  if (group !== undefined) fail(`the group "${group.title}" is never ended`)
  return layout
}

/** Everything written to stdout from now on, until `restore`. */
export function captureStdout(): { text: () => string; restore: () => void } {
  const written: string[] = []
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation(chunk => {
    written.push(String(chunk))
    return true
  })
  return { text: () => written.join(''), restore: () => spy.mockRestore() }
}
