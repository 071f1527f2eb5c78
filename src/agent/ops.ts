/**
 * One file operation on the runner; contents travel base64-encoded or as text. Shared files (root's ssh config, the
 * daemon's machines file, nix.conf) are only ever changed by blocks: a job adds its own marked block and takes away
 * exactly that block, under a lock per file, by writing a temporary file and renaming it over the old one (mode and
 * owner kept), so jobs that overlap on one runner never lose, remove or revive each other's lines.
 */
export type FileOp =
  /** Whether the path exists, and a file's bytes if it does. */
  | { op: 'read-if-exists'; path: string }
  /** A new file, unreadable to others from its first byte, then given `mode`. */
  | { op: 'create'; path: string; data: string; mode: number }
  /** An existing file rewritten in place: owner, mode and inode stay. */
  | { op: 'overwrite'; path: string; data: string }
  | { op: 'mkdir'; path: string }
  | { op: 'remove-tree'; path: string }
  /** A command whose failure is fine (closing SSH masters). */
  | { op: 'attempt'; argv: string[] }
  /**
   * Adds this job's block (`text`, from its begin to its end marker line) at the top or the end of a shared file,
   * creating the file (`mode`) and its directory (0700) if missing. With `restart`, runs that command under the lock
   * when the settings of all blocks together changed (the nix-daemon reads nix.conf only when it starts).
   */
  | {
      op: 'add-block'
      path: string
      token: string
      text: string
      at: 'top' | 'end'
      mode: number
      restart?: string[]
    }
  /** Replaces the lines inside this job's block (the canary's machines file, one builder at a time). */
  | { op: 'set-block'; path: string; token: string; text: string }
  /**
   * Takes away exactly this job's block, with the newline that came with it (`at` as it was added). A file (and
   * directory) that the action created goes with the last block. Answers how many other jobs' blocks are left.
   */
  | { op: 'remove-block'; path: string; token: string; at: 'top' | 'end'; restart?: string[] }

export type BlockOp = Extract<FileOp, { op: 'add-block' | 'set-block' | 'remove-block' }>

export interface FileResult {
  ok: boolean
  exists?: boolean
  data?: string
  error?: string
  /** remove-block: other jobs' blocks still in the file. */
  others?: number
  /** add-block/remove-block: the `restart` command ran. */
  restarted?: boolean
}

/** What the agent is asked: as JSON on its stdin when it runs as root, or as an argument in this process. */
export interface AgentRequest {
  ops: FileOp[]
  /** Go on after a failed operation (the post step's undo) instead of stopping there. */
  keepGoing: boolean
  /** Where the per-file locks live; by default the agent user's own (lock.ts `defaultLockDir`). */
  lockDir?: string
  /** How long to wait for another job's lock before failing. */
  lockWaitMs: number
}
