import {
  type ConfiguredBuilder,
  type KnownHostsLine,
  MARKER,
  renderKnownHostsLine,
  type Settings
} from '../inputs/index.js'
import type { FileOp } from './file-agent.js'
import type { ServiceManager } from './probe.js'
import { type Restart, RESTART_COMMANDS, type Undo } from './state.js'
import type { KeyFiles, WriteStep } from './work-dir.js'

/**
 * The ssh config: the block at the top of the connecting user's ~/.ssh/config (or the remote-store plan's own file)
 * that defines each configured builder's Host alias, and the known_hosts file it pins. Also the marked block, the one way the action changes a file that other jobs share: this ssh config, the machines file and
 * nix.conf (nix-config.ts) each hold one.
 */

export interface SshFiles extends KeyFiles {
  knownHostsFile: string
  /** With multiplexing: where the master connections' sockets live. */
  controlPath?: string
  /**
   * The master is the action's own process (the remote-store plan's store check, closed at the end of main): no
   * session may leave one of its own behind (`ControlPersist no`). Otherwise the first session starts one that stays
   * 10 minutes after its last session, for the daemon's next derivation, and the post step stops it.
   */
  ownMaster?: boolean
}

/**
 * This job's marked block, at the top or the end of a file that other jobs may share (created with `mode`, and its
 * directory, if missing). `restart`: the daemon reads this file only at start, so restart it when the blocks change.
 */
export interface BlockStep {
  kind: 'block'
  path: string
  mode: number
  at: 'top' | 'end'
  content: string
  restart?: ServiceManager
}

type BlockUndo = Extract<Undo, { kind: 'remove-block' }>

/** The ssh config block, at the top of `sshDir`/config, for a daemon's root or a single-user install's user. */
export function sshConfigBlock(
  sshDir: string,
  token: string,
  builders: ConfiguredBuilder[],
  files: SshFiles
): BlockStep {
  const content = renderSshConfig(token, builders, files)
  return { kind: 'block', path: `${sshDir}/config`, mode: 0o600, at: 'top', content }
}

/** The ssh config as a file of the remote-store plan's own, given to its `nix` with NIX_SSHOPTS (nixEnvironment). */
export function sshConfigFile(
  path: string,
  token: string,
  builders: ConfiguredBuilder[],
  files: SshFiles
): WriteStep {
  return { kind: 'write', path, mode: 0o600, content: renderSshConfig(token, builders, files) }
}

/** The known_hosts file the ssh config pins, in the work directory. */
export function knownHostsFile(settings: Settings, files: SshFiles): WriteStep {
  return {
    kind: 'write',
    path: files.knownHostsFile,
    mode: 0o644,
    content: renderKnownHosts(settings.knownHosts)
  }
}

/**
 * The block put at the top of the connecting user's ~/.ssh/config (ssh takes the first value it reads for each
 * option, so the top is the only place the pinned settings are sure to win). It ends with `Host *` so that options the
 * user had written before any Host line keep applying to every host.
 */
export function renderSshConfig(token: string, builders: ConfiguredBuilder[], files: SshFiles): string {
  const lines = [beginMarker(token)]
  for (const builder of builders) {
    lines.push(
      `Host ${builder.alias}`,
      `  HostName ${builder.host}`,
      `  Port ${builder.port}`,
      `  User ${builder.user}`,
      `  IdentityFile "${files.identityFile}"`,
      ...(files.identityAgent === undefined ? [] : [`  IdentityAgent "${files.identityAgent}"`]),
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile "${files.knownHostsFile}"`,
      '  StrictHostKeyChecking yes',
      '  BatchMode yes',
      '  ConnectTimeout 10',
      '  ServerAliveInterval 15',
      '  ServerAliveCountMax 4',
      ...multiplexLines(files)
    )
  }
  lines.push('Host *', endMarker(token))
  return lines.join('\n') + '\n'
}

/**
 * Nix opens a connection per derivation and never shares one (docs/nix.md, "ControlMaster hazards"): the master
 * does, for every session. Pinned either way: a `Host *` of the runner's own (ControlMaster yes, say) must not decide
 * for the alias, or a master nobody closes outlives the job, and Nix meets "got 'started'" or hangs on `ssh -O check`.
 */
function multiplexLines(files: SshFiles): string[] {
  if (files.controlPath === undefined) return ['  ControlMaster no', '  ControlPath none']
  const persist = files.ownMaster === true ? 'no' : '600'
  return ['  ControlMaster auto', `  ControlPath "${files.controlPath}"`, `  ControlPersist ${persist}`]
}

export function renderKnownHosts(lines: KnownHostsLine[]): string {
  return lines.map(renderKnownHostsLine).join('\n') + '\n'
}

/** Lines between this job's markers, as a block of a shared file. */
export function markedBlock(token: string, lines: string): string {
  return `${beginMarker(token)}\n${lines}${endMarker(token)}\n`
}

/**
 * The file agent finds a job's block by these marker lines (agent/). No `;` in them: Nix splits a machines file on it
 * before it drops comments.
 */
function beginMarker(token: string): string {
  return `# ${MARKER} ${token}: begin (added by the nix-offload action, whose post step removes it)`
}

function endMarker(token: string): string {
  return `# ${MARKER} ${token}: end`
}

/** A block's file operation, and its undo: this job's block out again, the daemon restarted as it was for it. */
export function blockChange(step: BlockStep, token: string): { op: FileOp; undo: BlockUndo } {
  const restart = step.restart === undefined ? undefined : restartOf(step.restart)
  const block = { path: step.path, token, at: step.at }
  return {
    op: {
      op: 'add-block',
      ...block,
      text: step.content,
      mode: step.mode,
      ...(restart === undefined ? {} : { restart: [...RESTART_COMMANDS[restart]] })
    },
    undo: { kind: 'remove-block', ...block, ...(restart === undefined ? {} : { restart }) }
  }
}

/** The file operation that takes a block back; it checks that none of this job's is left, and counts others'. */
export function blockUndoOp(undo: BlockUndo): FileOp {
  return {
    op: 'remove-block',
    path: undo.path,
    token: undo.token,
    at: undo.at,
    ...(undo.restart === undefined ? {} : { restart: [...RESTART_COMMANDS[undo.restart]] })
  }
}

/** The daemon reads nix.conf only when it starts: the file agent restarts it, as root, with this manager's command. */
function restartOf(manager: ServiceManager): Restart {
  if (manager === 'none') throw new Error('no service manager to restart the nix-daemon with')
  return manager
}
