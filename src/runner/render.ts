import { MARKER } from '../inputs/index.js'
import { type KnownHostsLine, renderKnownHostsLine } from '../inputs/index.js'
import type { Builder } from '../inputs/index.js'

/** A builder as configured on the runner: reached through its own ssh Host alias. */
export interface ConfiguredBuilder extends Builder {
  /** The ssh config Host alias, also the host part of the store URI Nix prints in its log. */
  alias: string
  /**
   * e.g. ssh-ng://nixbuilder@nix-offload-1a2b3c-1, with `?remote-program=…` when that input is set: what Nix names
   * the machine in `building … on '…'`.
   */
  storeUri: string
}

export interface SshFiles {
  /** The private key's file, or with an `identityAgent` only its public half, which picks the key from the agent. */
  identityFile: string
  /** The socket of the agent that holds the private key (base/ssh-agent.ts). */
  identityAgent?: string
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
 * The Nix machines file. A port in the URI only works from Nix 2.31 and field 8 (base64 host key) is written without
 * `[host]:port`, so the port and the pinned key live in the ssh Host alias instead (docs/nix.md, "The machines
 * format").
 */
export function renderMachines(builders: ConfiguredBuilder[]): string {
  return builders.map(renderMachineLine).join('\n') + '\n'
}

/** The machines lines as this job's marked block, in a machines file other jobs share. */
export function renderMachinesBlock(token: string, builders: ConfiguredBuilder[]): string {
  return `${beginMarker(token)}\n${renderMachines(builders)}# ${MARKER} ${token}: end\n`
}

export function renderMachineLine(builder: ConfiguredBuilder): string {
  const list = (items: string[]): string => (items.length === 0 ? '-' : items.join(','))
  return [
    builder.storeUri,
    list(builder.systems),
    '-',
    String(builder.maxJobs),
    String(builder.speedFactor),
    list(builder.supportedFeatures),
    list(builder.mandatoryFeatures),
    '-'
  ].join(' ')
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
      '  ServerAliveCountMax 4'
    )
    // Nix opens a connection per derivation and never shares one (docs/nix.md, "ControlMaster hazards"): the master
    // does, for every session.
    // Pinned either way: a `Host *` of the runner's own (ControlMaster yes, say) must not decide for the alias, or a
    // master nobody closes outlives the job, and Nix meets "got 'started'" or hangs on `ssh -O check`.
    if (files.controlPath !== undefined) {
      const persist = files.ownMaster === true ? 'no' : '600'
      lines.push(
        '  ControlMaster auto',
        `  ControlPath "${files.controlPath}"`,
        `  ControlPersist ${persist}`
      )
    } else {
      lines.push('  ControlMaster no', '  ControlPath none')
    }
  }
  lines.push('Host *', `# ${MARKER} ${token}: end`)
  return lines.join('\n') + '\n'
}

export function renderKnownHosts(lines: KnownHostsLine[]): string {
  return lines.map(renderKnownHostsLine).join('\n') + '\n'
}

/** Settings the action gives Nix, as nix.conf / NIX_CONFIG lines. */
export function renderNixSettings(machinesFile: string | undefined, buildersUseSubstitutes: boolean): string {
  const lines: string[] = []
  if (machinesFile !== undefined) lines.push(`builders = @${machinesFile}`)
  if (buildersUseSubstitutes) lines.push('builders-use-substitutes = true')
  return lines.join('\n')
}

/** Appended to nix.conf: later lines override earlier ones there. */
export function renderNixConfBlock(token: string, settings: string): string {
  return `${beginMarker(token)}\n${settings}\n# ${MARKER} ${token}: end\n`
}

/**
 * The file agent finds a job's block by these marker lines (file-agent.ts). No `;` in them: Nix splits a machines
 * file on it before it drops comments.
 */
function beginMarker(token: string): string {
  return `# ${MARKER} ${token}: begin (added by the nix-offload action, whose post step removes it)`
}
