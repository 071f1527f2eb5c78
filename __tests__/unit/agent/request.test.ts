import { describe, expect, it } from 'vitest'
import { parseRequest } from '../../../src/agent/request.js'

const request = (op: object): string => JSON.stringify({ ops: [op], keepGoing: false, lockWaitMs: 1_000 })

describe("the agent's request, checked before root acts on it", () => {
  it('takes every operation as the runner sends it', () => {
    const ops = [
      { op: 'mkdir', path: '/root/.ssh/nix-offload-ab' },
      { op: 'create', path: '/root/.ssh/nix-offload-ab/key', data: 'eA==', mode: 0o600 },
      {
        op: 'add-block',
        path: '/etc/nix/nix.conf',
        token: 'ab',
        text: 'x',
        at: 'end',
        mode: 0o644,
        restart: ['true']
      },
      { op: 'remove-block', path: '/etc/nix/nix.conf', token: 'ab', at: 'end' },
      { op: 'attempt', argv: ['ssh', '-O', 'stop', 'alias'] }
    ]
    const text = JSON.stringify({ ops, keepGoing: true, lockDir: '/run/x', lockWaitMs: 5 })
    expect(parseRequest(text)).toEqual({ ops, keepGoing: true, lockDir: '/run/x', lockWaitMs: 5 })
  })

  it('refuses a relative path, a token that is not hex, an unknown operation and a command that is not words', () => {
    expect(() => parseRequest(request({ op: 'mkdir', path: 'here' }))).toThrow(
      'operation 0 (mkdir): path: not an absolute path'
    )
    expect(() =>
      parseRequest(request({ op: 'remove-block', path: '/etc/nix/nix.conf', token: 'A;B', at: 'end' }))
    ).toThrow('token is not lowercase hex')
    expect(() => parseRequest(request({ op: 'chmod', path: '/etc' }))).toThrow('no such operation')
    expect(() => parseRequest(request({ op: 'attempt', argv: ['ok', 1] }))).toThrow('not a list of words')
    expect(() => parseRequest('[]')).toThrow('{ ops: [...] }')
  })
})
