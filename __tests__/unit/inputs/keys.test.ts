import ssh2 from 'ssh2'
import { createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  fingerprint,
  knownHostsLineMatches,
  knownHostsName,
  parseHostKey,
  parseKnownHostsLine,
  parsePrivateKey,
  renderKnownHostsLine
} from '../../../src/inputs/keys.js'
import { encryptedKeyPair, readableKeyPair } from '../support/ssh-keys.js'

// A throwaway host key made with `ssh-keygen -t ed25519 -C root@labA`; the fingerprint is what `ssh-keygen -lf` printed.
const ED25519_BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIK9FOpMsDI5XMSC1L3hqFU0cUvMIhEbq6uCOU+4YkSag'
const ED25519_FINGERPRINT = 'SHA256:HmMJs63QglGkfsnXvy8/gfIfYvvamTsghAF45jVrXVg'
const ECDSA_BLOB =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBISR2zbJGpUpT0DT6r9ain7MNICroa+hdcCrSMzgZTtcFdAshXhNIgMvWju/LXw6qnrM3kDkFzZKUeBIWqB6/EI='
const ECDSA_FINGERPRINT = 'SHA256:150epnnZSdQka3yMVbRoHnAOSAwAwE9USQtBWAuDUr8'
// `ssh-keygen -H` of "[127.0.0.1]:2201 ssh-ed25519 <ED25519_BLOB>".
const SSH_KEYGEN_HASHED = '|1|EaO/EHyIGtkWF0nN0m+c39y+WZ4=|GPjCKbtSilHyWYoXRQFIxjkRm98='

const plainKey = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ed25519', { comment: 'ci@example' }))
const encryptedKey = encryptedKeyPair('correct horse')

/** The base64 lines of a PEM/OpenSSH key: the secret part, unlike the BEGIN/END armour. */
function bodyLines(pem: string): string[] {
  return pem.split('\n').filter(line => line !== '' && !line.startsWith('-----'))
}

/** `ssh-keygen -H`: `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`. */
function hashedHost(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

describe('parsePrivateKey', () => {
  it('accepts an unencrypted OpenSSH ed25519 key and derives its public line', () => {
    const key = parsePrivateKey(plainKey.private)
    const [type, blob] = plainKey.public.split(' ')
    expect(key).toEqual({
      text: plainKey.private.trim() + '\n',
      type: 'ssh-ed25519',
      publicLine: `${type} ${blob}`
    })
  })

  it('accepts an ECDSA key', () => {
    const ecdsa = readableKeyPair(() => ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }))
    const key = parsePrivateKey(ecdsa.private)
    expect(typeof key === 'string' ? key : key.type).toBe('ecdsa-sha2-nistp256')
  })

  it('normalises CRLF line ends and a missing final newline to LF with exactly one final newline', () => {
    const pasted = plainKey.private.trim().replace(/\n/g, '\r\n')
    const key = parsePrivateKey(pasted)
    expect(typeof key === 'string' ? key : key.text).toBe(plainKey.private.trim() + '\n')
  })

  it('drops blank lines and spaces pasted around the key', () => {
    const key = parsePrivateKey(`\n\n  ${plainKey.private.trim()}  \n\n\n`)
    expect(typeof key === 'string' ? key : key.text).toBe(plainKey.private.trim() + '\n')
  })

  it('refuses a key protected by a passphrase, saying why a passphrase cannot work', () => {
    expect(parsePrivateKey(encryptedKey.private)).toBe(
      'is protected by a passphrase; the nix-daemon cannot type one. Use a key without a passphrase (ssh-keygen -N "")'
    )
  })

  it('refuses a public key line', () => {
    expect(parsePrivateKey(plainKey.public)).toBe(
      'is not a private key: expected the whole file, starting with "-----BEGIN OPENSSH PRIVATE KEY-----"; ' +
        'its first line is not a BEGIN line'
    )
  })

  it('reads a key whose lines carry trailing spaces or indentation, as OpenSSH does once they are trimmed', () => {
    const padded = plainKey.private
      .split('\n')
      .map((line, index) => (index % 2 === 0 ? `${line}   ` : `  ${line}\t`))
      .join('\r\n')
    const key = parsePrivateKey(padded)
    expect(typeof key).toBe('object')
    expect(key).toMatchObject({ type: 'ssh-ed25519' })
  })

  it('refuses text that only looks like a key file', () => {
    const mangled = plainKey.private.replace(/^(-----BEGIN[^\n]*\n)(.{8})/, '$1AAAAAAAA')
    expect(parsePrivateKey(mangled)).toBe(
      'could not be read as an SSH private key (was the secret pasted whole, with its BEGIN and END lines?)'
    )
  })

  it('refuses a key cut short after its first lines', () => {
    const truncated = plainKey.private.split('\n').slice(0, 3).join('\n')
    expect(parsePrivateKey(truncated)).toMatch(
      /^is cut short: its last line should be "-----END OPENSSH PRIVATE KEY-----"/
    )
  })

  it('never quotes the key in a refusal', () => {
    const refusals = [
      parsePrivateKey(encryptedKey.private),
      parsePrivateKey(plainKey.private.split('\n').slice(0, 3).join('\n')),
      parsePrivateKey(plainKey.private.replace('-----BEGIN OPENSSH PRIVATE KEY-----', 'BEGIN'))
    ]
    for (const refusal of refusals) {
      expect(typeof refusal).toBe('string')
      for (const line of [...bodyLines(encryptedKey.private), ...bodyLines(plainKey.private)]) {
        expect(String(refusal)).not.toContain(line)
      }
    }
  })
})

describe('parseHostKey', () => {
  it('accepts an ed25519 and an ECDSA host key', () => {
    expect(parseHostKey('ssh-ed25519', ED25519_BLOB)).toEqual({ type: 'ssh-ed25519', blob: ED25519_BLOB })
    expect(parseHostKey('ecdsa-sha2-nistp256', ECDSA_BLOB)).toEqual({
      type: 'ecdsa-sha2-nistp256',
      blob: ECDSA_BLOB
    })
  })

  it('refuses an unknown key type, naming it', () => {
    expect(parseHostKey('ssh-dss', ED25519_BLOB)).toMatch(
      /^"ssh-dss" is not an SSH host key type \(expected one of ssh-ed25519, /
    )
  })

  it('refuses a blob that is not base64', () => {
    expect(parseHostKey('ssh-ed25519', 'AAAA$%^')).toBe('the key is not base64')
  })

  it('refuses a blob of another key type', () => {
    expect(parseHostKey('ssh-ed25519', ECDSA_BLOB)).toBe('the base64 part is not a valid ssh-ed25519 key')
  })

  it('refuses a truncated blob', () => {
    expect(parseHostKey('ssh-ed25519', ED25519_BLOB.slice(0, 40))).toBe(
      'the base64 part is not a valid ssh-ed25519 key'
    )
  })
})

describe('fingerprint', () => {
  it('matches ssh-keygen -lf', () => {
    expect(fingerprint({ type: 'ssh-ed25519', blob: ED25519_BLOB })).toBe(ED25519_FINGERPRINT)
    expect(fingerprint({ type: 'ecdsa-sha2-nistp256', blob: ECDSA_BLOB })).toBe(ECDSA_FINGERPRINT)
  })
})

describe('knownHostsName', () => {
  it('is the bare host on port 22 and [host]:port otherwise', () => {
    expect(knownHostsName('builder.example.com', 22)).toBe('builder.example.com')
    expect(knownHostsName('builder.example.com', 2222)).toBe('[builder.example.com]:2222')
    expect(knownHostsName('::1', 2222)).toBe('[::1]:2222')
    expect(knownHostsName('::1', 22)).toBe('::1')
  })
})

describe('parseKnownHostsLine', () => {
  const key = { type: 'ssh-ed25519', blob: ED25519_BLOB }

  it('reads hosts, type and key, and drops the comment', () => {
    expect(
      parseKnownHostsLine(`  [b.example.com]:2222,10.0.0.5 ssh-ed25519 ${ED25519_BLOB} root@b  `)
    ).toEqual({
      hosts: '[b.example.com]:2222,10.0.0.5',
      key
    })
  })

  it('keeps a @cert-authority or @revoked marker', () => {
    expect(parseKnownHostsLine(`@cert-authority *.example.com ssh-ed25519 ${ED25519_BLOB}`)).toEqual({
      marker: '@cert-authority',
      hosts: '*.example.com',
      key
    })
    expect(parseKnownHostsLine(`@revoked b.example.com ssh-ed25519 ${ED25519_BLOB}`)).toEqual({
      marker: '@revoked',
      hosts: 'b.example.com',
      key
    })
  })

  it('accepts a hashed host entry', () => {
    expect(parseKnownHostsLine(`${SSH_KEYGEN_HASHED} ssh-ed25519 ${ED25519_BLOB}`)).toEqual({
      hosts: SSH_KEYGEN_HASHED,
      key
    })
  })

  it('refuses a line with fewer than three fields', () => {
    expect(parseKnownHostsLine(`ssh-ed25519 ${ED25519_BLOB}`)).toBe(
      'expected "host key-type base64-key", e.g. "[builder.example.com]:2222 ssh-ed25519 AAAA…"'
    )
  })

  it('refuses a host field with characters no host pattern has', () => {
    expect(parseKnownHostsLine(`b.example.com;touch ssh-ed25519 ${ED25519_BLOB}`)).toBe(
      '"b.example.com;touch" is not a known_hosts host pattern'
    )
  })

  it('passes on the key refusal', () => {
    expect(parseKnownHostsLine('b.example.com ssh-ed25519 !!!')).toBe('the key is not base64')
  })

  it('renders back to the same line without the comment', () => {
    for (const line of [
      `[b.example.com]:2222 ssh-ed25519 ${ED25519_BLOB}`,
      `@revoked b.example.com ssh-ed25519 ${ED25519_BLOB}`
    ]) {
      const parsed = parseKnownHostsLine(`${line} comment`)
      expect(typeof parsed === 'string' ? parsed : renderKnownHostsLine(parsed)).toBe(line)
    }
  })
})

describe('knownHostsLineMatches', () => {
  const key = { type: 'ssh-ed25519', blob: ED25519_BLOB }
  const line = (hosts: string, marker?: '@revoked' | '@cert-authority') =>
    marker === undefined ? { hosts, key } : { marker, hosts, key }

  it('matches a plain entry on port 22 only by the bare name', () => {
    expect(knownHostsLineMatches(line('b.example.com'), 'b.example.com', 22)).toBe(true)
    expect(knownHostsLineMatches(line('b.example.com'), 'b.example.com', 2222)).toBe(false)
    expect(knownHostsLineMatches(line('b.example.com'), 'c.example.com', 22)).toBe(false)
  })

  it('matches [host]:port entries on that port only', () => {
    expect(knownHostsLineMatches(line('[b.example.com]:2222'), 'b.example.com', 2222)).toBe(true)
    expect(knownHostsLineMatches(line('[b.example.com]:2222'), 'b.example.com', 22)).toBe(false)
    expect(knownHostsLineMatches(line('[::1]:2222'), '::1', 2222)).toBe(true)
  })

  it('matches any name of a comma-separated list, ignoring case', () => {
    expect(knownHostsLineMatches(line('a.example.com,B.Example.COM'), 'b.example.com', 22)).toBe(true)
  })

  it('treats dots literally and supports * and ? wildcards', () => {
    expect(knownHostsLineMatches(line('*.example.com'), 'b.example.com', 22)).toBe(true)
    expect(knownHostsLineMatches(line('b?.example.com'), 'b1.example.com', 22)).toBe(true)
    expect(knownHostsLineMatches(line('b.example.com'), 'bxexample.com', 22)).toBe(false)
    expect(knownHostsLineMatches(line('10.0.0.*'), '10.0.0.7', 22)).toBe(true)
  })

  it('lets a negated pattern exclude a host that another pattern matches', () => {
    expect(knownHostsLineMatches(line('*.example.com,!bad.example.com'), 'bad.example.com', 22)).toBe(false)
    expect(knownHostsLineMatches(line('!bad.example.com,*.example.com'), 'bad.example.com', 22)).toBe(false)
    expect(knownHostsLineMatches(line('!bad.example.com,*.example.com'), 'good.example.com', 22)).toBe(true)
  })

  it('never counts a @revoked line as a host key', () => {
    expect(knownHostsLineMatches(line('b.example.com', '@revoked'), 'b.example.com', 22)).toBe(false)
  })

  it('matches a hashed entry made by ssh-keygen -H for [host]:port', () => {
    const hashed = line(SSH_KEYGEN_HASHED)
    expect(knownHostsLineMatches(hashed, '127.0.0.1', 2201)).toBe(true)
    expect(knownHostsLineMatches(hashed, '127.0.0.1', 22)).toBe(false)
    expect(knownHostsLineMatches(hashed, '127.0.0.2', 2201)).toBe(false)
  })

  it('matches a hashed entry for a bare name on port 22', () => {
    const hashed = line(hashedHost('b.example.com'))
    expect(knownHostsLineMatches(hashed, 'b.example.com', 22)).toBe(true)
    expect(knownHostsLineMatches(hashed, 'b.example.com', 2222)).toBe(false)
  })
})
