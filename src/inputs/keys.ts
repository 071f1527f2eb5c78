import { createHash, createHmac } from 'node:crypto'
import ssh2 from 'ssh2'

/** Key types OpenSSH accepts in known_hosts and .pub files. */
const HOST_KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com'
])

/** A builder's public host key: what known_hosts pins. */
export interface HostKey {
  type: string
  /** base64 of the key blob, as in a .pub file */
  blob: string
}

/** A validated private key, normalised so that OpenSSH accepts the file. */
export interface PrivateKey {
  /** PEM/OpenSSH text with LF line ends and a final newline (ssh refuses a key file without one). */
  text: string
  type: string
  /** The matching public key line, safe to print (for authorized_keys on the builder). */
  publicLine: string
}

/** Returns a reason the text is not a usable private key, without ever quoting it. */
export function parsePrivateKey(raw: string): PrivateKey | string {
  // What a paste adds around the lines (CRLF, indentation from YAML, trailing spaces) is not part of the key: OpenSSH
  // reads such a file once each line is trimmed, so the action trims them too.
  const lines = raw
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map(line => line.trim())
  const text = lines.join('\n').trim() + '\n'
  if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\n/.test(text)) {
    const first = text.split('\n')[0] ?? ''
    // The first line is shown only when it is armour: a base64 line would be part of the secret.
    const found = first.startsWith('-----')
      ? `its first line is "${first.slice(0, 60)}"`
      : 'its first line is not a BEGIN line'
    return `is not a private key: expected the whole file, starting with "-----BEGIN OPENSSH PRIVATE KEY-----"; ${found}`
  }
  if (!/\n-----END [A-Z0-9 ]*PRIVATE KEY-----\n$/.test(text)) {
    return 'is cut short: its last line should be "-----END OPENSSH PRIVATE KEY-----" (was the secret pasted whole?)'
  }
  const parsed = ssh2.utils.parseKey(text)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key instanceof Error || key === undefined) {
    const reason = key instanceof Error ? key.message : ''
    if (/passphrase|encrypted/i.test(reason)) {
      return 'is protected by a passphrase; the nix-daemon cannot type one. Use a key without a passphrase (ssh-keygen -N "")'
    }
    return 'could not be read as an SSH private key (was the secret pasted whole, with its BEGIN and END lines?)'
  }
  if (!key.isPrivateKey()) return 'holds a public key; give the private key'
  return { text, type: key.type, publicLine: `${key.type} ${key.getPublicSSH().toString('base64')}` }
}

/** Reads `type base64 [comment]`, as in a .pub file. Returns a reason on failure. */
export function parseHostKey(typeToken: string, blobToken: string): HostKey | string {
  if (!HOST_KEY_TYPES.has(typeToken)) {
    return `"${typeToken.slice(0, 40)}" is not an SSH host key type (expected one of ${[...HOST_KEY_TYPES].join(', ')})`
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blobToken)) return 'the key is not base64'
  const parsed = ssh2.utils.parseKey(`${typeToken} ${blobToken}`)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (key instanceof Error || key === undefined || key.type !== typeToken) {
    return `the base64 part is not a valid ${typeToken} key`
  }
  return { type: typeToken, blob: blobToken }
}

/** `SHA256:…` as `ssh-keygen -lf` prints it. */
export function fingerprint(key: HostKey): string {
  const digest = createHash('sha256').update(Buffer.from(key.blob, 'base64')).digest('base64')
  return `SHA256:${digest.replace(/=+$/, '')}`
}

/** The host field of a known_hosts line for this address, as ssh looks it up. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** One validated known_hosts line. */
export interface KnownHostsLine {
  marker?: '@cert-authority' | '@revoked'
  /** comma-separated patterns or one `|1|salt|hash` entry */
  hosts: string
  key: HostKey
}

const HOST_PATTERNS = /^[A-Za-z0-9.\-_:[\]*?!,]+$/
const HASHED_HOST = /^\|1\|[A-Za-z0-9+/]+=*\|[A-Za-z0-9+/]+=*$/

/** Parses one known_hosts line; returns a reason on failure. The comment is dropped. */
export function parseKnownHostsLine(line: string): KnownHostsLine | string {
  const tokens = line.trim().split(/[ \t]+/)
  let marker: KnownHostsLine['marker']
  if (tokens[0] === '@cert-authority' || tokens[0] === '@revoked') {
    marker = tokens[0]
    tokens.shift()
  }
  const [hosts, type, blob] = tokens
  if (hosts === undefined || type === undefined || blob === undefined) {
    return 'expected "host key-type base64-key", e.g. "[builder.example.com]:2222 ssh-ed25519 AAAA…"'
  }
  if (!HOST_PATTERNS.test(hosts) && !HASHED_HOST.test(hosts)) {
    return `"${hosts.slice(0, 60)}" is not a known_hosts host pattern`
  }
  const key = parseHostKey(type, blob)
  if (typeof key === 'string') return key
  return marker === undefined ? { hosts, key } : { marker, hosts, key }
}

export function renderKnownHostsLine(line: KnownHostsLine): string {
  return [line.marker, line.hosts, line.key.type, line.key.blob].filter(Boolean).join(' ')
}

/** Whether a known_hosts line would be consulted for this host and port (plain, wildcard or hashed entries). */
export function knownHostsLineMatches(line: KnownHostsLine, host: string, port: number): boolean {
  if (line.marker === '@revoked') return false
  const name = knownHostsName(host, port)
  if (HASHED_HOST.test(line.hosts)) {
    const [, , salt = '', hash = ''] = line.hosts.split('|')
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64')
    return digest === hash
  }
  let matched = false
  for (const pattern of line.hosts.split(',')) {
    const negated = pattern.startsWith('!')
    const glob = negated ? pattern.slice(1) : pattern
    if (globMatches(glob, name)) {
      if (negated) return false
      matched = true
    }
  }
  return matched
}

function globMatches(glob: string, name: string): boolean {
  const source = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${source}$`, 'i').test(name)
}
