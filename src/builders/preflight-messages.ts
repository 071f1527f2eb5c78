import type { BuilderFacts } from './builder-facts.js'
import type { Reach } from './preflight.js'
import {
  type BuilderAccess,
  type BuilderRequest,
  fingerprint,
  type HostKey,
  Input,
  knownHostsName,
  type PrivateKey,
  type Strategy
} from '../inputs/index.js'

// What the preflight tells the user about a builder that fails it: the first line names the builder and the cause,
// the rest the fix.

export function unreachableMessage(
  request: BuilderRequest,
  name: string,
  reach: Extract<Reach, { ok: false }>
): string {
  const where = `${request.host} port ${request.port}`
  // A builder from the `builders` input has its port in its line, not in the `port` input.
  const portSource =
    request.pinInput === Input.HostPublicKey ? `'${Input.Port}'` : `the port in ${request.origin}`
  const why = {
    refused: `connection refused on ${where}: nothing listens there. Is sshd running on the builder, and is ${portSource} right?`,
    timeout: `no answer from ${where} (${reach.detail}): the builder is down, or a firewall drops the connection.`,
    dns: `the name ${request.host} does not resolve (${reach.detail}). Check '${Input.Host}'.`,
    unreachable: `cannot connect to ${where} (${reach.detail}).`
  }[reach.failure]
  return `Builder ${name} is unreachable: ${why}`
}

export function unpinnedMessage(request: BuilderRequest, name: string, presented: HostKey): string {
  const line =
    request.pinInput === Input.HostPublicKey
      ? `${presented.type} ${presented.blob}`
      : `${knownHostsName(request.host, request.port)} ${presented.type} ${presented.blob}`
  return (
    `Input '${request.pinInput}': builder ${name} has no pinned host key, and strict host-key checking is always ` +
    `on. It presents ${presented.type} ${fingerprint(presented)}. Check that fingerprint on the builder ` +
    `(ssh-keygen -lf /etc/ssh/ssh_host_${presented.type.replace(/^ssh-/, '').replace(/-sha2-.*/, '')}_key.pub), ` +
    `then add this line to '${request.pinInput}':\n${line}`
  )
}

export function hostKeyMismatchMessage(
  request: BuilderRequest,
  name: string,
  presented: HostKey,
  pinned: readonly string[]
): string {
  return (
    `Builder ${name} presented a host key that is not the pinned one: it presented ${presented.type} ` +
    `${fingerprint(presented)}, '${request.pinInput}' pins ${pinned.join(', ')}. If the builder ` +
    `was reinstalled or its keys rotated, check the new key on the builder (ssh-keygen -lf ` +
    `/etc/ssh/ssh_host_ed25519_key.pub) and update '${request.pinInput}'; otherwise something is in the middle.`
  )
}

export function keyRefusedMessage(request: BuilderRequest, name: string, key: PrivateKey): string {
  return (
    `Builder ${name} refused the client key (${key.type}) for user ${request.user}: the key in ` +
    `'${Input.SshPrivateKey}' is not authorised there. Add its public half to ~${request.user}/.ssh/authorized_keys ` +
    `on the builder: ${key.publicLine}`
  )
}

export function sshFailedMessage(name: string, error: string): string {
  // OpenSSH 9.8+ drops an address it penalises (PerSourcePenalties) right after the TCP connect, before any SSH
  // banner: after many failed or unauthenticated connections from it, e.g. a canary run every few minutes.
  const penalty = /before handshake|Connection lost|ECONNRESET/i.test(error)
    ? ' The builder closed the connection before the SSH handshake: its sshd may be penalising this address ' +
      '(OpenSSH 9.8+ PerSourcePenalties, after failed or unauthenticated connections from it), or MaxStartups is ' +
      'reached. Check its sshd log; exempt the runner with PerSourcePenaltyExemptList, or wait for the penalty to end.'
    : ''
  return `Builder ${name}: the SSH session failed: ${error}.${penalty}`
}

/**
 * A key that runs only one of Nix's programs decides the protocol: ssh-ng talks to nix-daemon, ssh to nix-store
 * --serve, and the build in the builder's own store needs ssh-ng.
 */
export function accessMismatch(
  request: BuilderRequest,
  name: string,
  access: BuilderAccess,
  strategy: Strategy
): string | undefined {
  const fromLine = request.pinInput === Input.KnownHosts
  const protocolInput = (protocol: string): string =>
    fromLine ? `a ${protocol}:// URI in its line in ${request.origin}` : `'${Input.Protocol}: ${protocol}'`
  if (access === 'nix-store --serve' && request.protocol === 'ssh-ng') {
    return (
      `Builder ${name}: the key for ${request.user} runs only \`nix-store --serve\` there (a forced command, e.g. ` +
      `NixOS nix.sshServe with protocol "ssh"), which speaks Nix's ssh protocol, not ssh-ng. Fix: set ` +
      `${protocolInput('ssh')} with '${Input.Strategy}: hook' (or auto), or have the builder run \`nix-daemon --stdio\` ` +
      `for this key (NixOS: nix.sshServe.protocol = "ssh-ng").`
    )
  }
  if (access === 'nix-daemon' && request.protocol === 'ssh') {
    return (
      `Builder ${name}: the key for ${request.user} runs only \`nix-daemon --stdio\` there (a forced command), ` +
      `which speaks ssh-ng, not Nix's ssh protocol. Fix: set ${protocolInput('ssh-ng')}.`
    )
  }
  if (access === 'nix-store --serve' && strategy === 'remote-store') {
    return (
      `Builder ${name}: '${Input.Strategy}: remote-store' builds in the builder's own store over ssh-ng, and the key ` +
      `for ${request.user} runs only \`nix-store --serve\` there. Fix: set '${Input.Strategy}: hook' (or auto).`
    )
  }
  return undefined
}

export function nixMissingMessage(request: BuilderRequest, name: string, facts: BuilderFacts): string {
  const store =
    request.protocol === 'ssh-ng' ? `${facts.program} --stdio` : `${facts.program} --serve --write`
  if (request.remoteProgram !== undefined) {
    const programName = facts.program.slice(facts.program.lastIndexOf('/') + 1)
    return (
      `Input '${Input.RemoteProgram}': builder ${name} has no executable ${facts.program}, and Nix runs \`${store}\` ` +
      `there over SSH. Fix: set '${Input.RemoteProgram}' to the directory where \`command -v ${programName}\` finds ` +
      `it in a login shell of ${request.user} on the builder (multi-user installs: /nix/var/nix/profiles/default/bin).`
    )
  }
  return (
    `Builder ${name}: ${facts.program} is not on the non-interactive PATH of ${request.user}, and Nix runs ` +
    `\`${store}\` there over SSH. Fix from the workflow: set \`${Input.RemoteProgram}: ` +
    `/nix/var/nix/profiles/default/bin\` (where \`command -v ${facts.program}\` finds it in a login shell on the ` +
    `builder). Or fix on the builder: install Nix for that user, or make it reachable without a login ` +
    `shell (multi-user installs put it in /nix/var/nix/profiles/default/bin, which only interactive shells add: ` +
    `e.g. add that directory to PATH in ~${request.user}/.bashrc above its interactive check, or set ` +
    `"SetEnv PATH=…" for that user in sshd_config).`
  )
}

export function storeUnresponsiveMessage(request: BuilderRequest, name: string, facts: BuilderFacts): string {
  const asked =
    facts.access === 'nix-daemon'
      ? `its nix-daemon --stdio (the only command the key runs) shook hands, but a query of its store got`
      : `\`nix store ping\` as ${request.user} there:`
  return (
    `Builder ${name}: its Nix store does not answer: ${asked} ` +
    `${facts.storeError ?? 'no answer'}. The SSH login works, but every build there needs its nix-daemon: is it ` +
    'running and responsive? Fix: restart it on the builder (systemctl restart nix-daemon).'
  )
}
