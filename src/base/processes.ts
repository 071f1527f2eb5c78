import { readdirSync, readFileSync, statSync } from 'node:fs'
import { runCommand } from './process.js'

/**
 * A process the main step started and may leave running if it is killed: its pid, and when it started, which tells
 * it from a later process given the same pid.
 */
export interface ProcessRecord {
  pid: number
  /** Linux: /proc/<pid>/stat's field 22 (clock ticks since boot); macOS: `ps -o lstart=`. */
  start: string
  /** What it is, for the log (`nix build`, `ssh master`). */
  label: string
}

interface ProcessEntry {
  pid: number
  ppid: number
  uid: number
  start: string
}

/** When process `pid` started, as ProcessRecord's `start`; undefined when it no longer runs. */
export async function startTimeOf(pid: number): Promise<string | undefined> {
  if (process.platform === 'linux') return procEntry(String(pid))?.start
  const result = await runCommand('ps', ['-o', 'lstart=', '-p', String(pid)], { env: PS_ENV })
  const start = result.stdout.toString().trim().replace(/\s+/g, ' ')
  return result.code === 0 && start !== '' ? start : undefined
}

/**
 * Stops the recorded processes that still run, and every process they started: only those that are the same
 * processes (pid and start time) and this user's. SIGTERM first, so that `nix` ends its SSH sessions itself, then
 * SIGKILL after `waitMs`. Answers the records it found running.
 */
export async function stopProcesses(records: ProcessRecord[], waitMs: number): Promise<ProcessRecord[]> {
  const table = await processTable()
  const uid = process.getuid?.()
  const mine = (entry: ProcessEntry): boolean => uid === undefined || entry.uid === uid
  const running = records.filter(record =>
    table.some(entry => entry.pid === record.pid && entry.start === record.start && mine(entry))
  )
  const targets = withDescendants(
    running.map(record => record.pid),
    table
  ).filter(mine)
  for (const target of targets) signal(target.pid, 'SIGTERM')
  const deadline = Date.now() + waitMs
  let left = targets
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 50))
    left = await stillRunning(left)
  }
  for (const target of await stillRunning(left)) signal(target.pid, 'SIGKILL')
  return running
}

/** The processes `pids` name, and all their descendants, as `table` has them. */
function withDescendants(pids: number[], table: ProcessEntry[]): ProcessEntry[] {
  const found = new Map<number, ProcessEntry>()
  let frontier = table.filter(entry => pids.includes(entry.pid))
  while (frontier.length > 0) {
    for (const entry of frontier) found.set(entry.pid, entry)
    frontier = table.filter(entry => found.has(entry.ppid) && !found.has(entry.pid))
  }
  return [...found.values()]
}

async function stillRunning(entries: ProcessEntry[]): Promise<ProcessEntry[]> {
  const starts = await Promise.all(entries.map(entry => startTimeOf(entry.pid)))
  return entries.filter((entry, index) => starts[index] === entry.start)
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // It ended meanwhile.
  }
}

/** Every process on the machine: /proc on Linux, `ps` elsewhere (macOS). */
async function processTable(): Promise<ProcessEntry[]> {
  if (process.platform === 'linux') {
    return readdirSync('/proc')
      .filter(name => /^\d+$/.test(name))
      .map(procEntry)
      .filter(entry => entry !== undefined)
  }
  const result = await runCommand('ps', ['-A', '-o', 'pid=,ppid=,uid=,lstart='], { env: PS_ENV })
  return result.stdout
    .toString()
    .split('\n')
    .map(line => /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S.*)$/.exec(line))
    .filter(match => match !== null)
    .map(([, pid, ppid, uid, start]) => ({
      pid: Number(pid),
      ppid: Number(ppid),
      uid: Number(uid),
      start: (start ?? '').trim().replace(/\s+/g, ' ')
    }))
}

/** `lstart` in one format whatever the runner's locale. */
const PS_ENV = { ...process.env, LC_ALL: 'C' }

/** A Linux process from /proc/<pid>/stat: the fields after the command name, which may hold spaces and parentheses. */
function procEntry(pid: string): ProcessEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const start = fields[19]
    const ppid = Number(fields[1])
    // A zombie has ended: only its parent's wait is missing.
    if (start === undefined || !Number.isInteger(ppid) || fields[0] === 'Z') return undefined
    return { pid: Number(pid), ppid, uid: statSync(`/proc/${pid}`).uid, start }
  } catch {
    return undefined
  }
}
