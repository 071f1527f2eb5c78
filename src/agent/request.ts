import { isRecord } from '../base/index.js'
import type { AgentRequest, FileOp } from './ops.js'

/** The request on the agent's stdin, checked field by field before root acts on any of it. */
export function parseRequest(text: string): AgentRequest {
  const value: unknown = JSON.parse(text)
  if (!isRecord(value) || !Array.isArray(value.ops))
    throw new Error('the file agent needs { ops: [...] } on stdin')
  const { keepGoing, lockDir, lockWaitMs } = value
  if (typeof keepGoing !== 'boolean') throw new Error('keepGoing: not true or false')
  if (typeof lockWaitMs !== 'number' || !(lockWaitMs > 0))
    throw new Error('lockWaitMs: not a positive number')
  const request: AgentRequest = { ops: value.ops.map(parseOp), keepGoing, lockWaitMs }
  if (lockDir !== undefined) request.lockDir = absolute(lockDir, 'lockDir')
  return request
}

function parseOp(value: unknown, index: number): FileOp {
  if (!isRecord(value)) throw new Error(`operation ${index}: not an object`)
  const field = `operation ${index} (${String(value.op)})`
  const path = (): string => absolute(value.path, `${field}: path`)
  const text = (key: string): string => {
    const found = value[key]
    if (typeof found !== 'string') throw new Error(`${field}: ${key} is not text`)
    return found
  }
  const mode = (): number => {
    if (
      typeof value.mode !== 'number' ||
      !Number.isInteger(value.mode) ||
      value.mode < 0 ||
      value.mode > 0o7777
    )
      throw new Error(`${field}: mode is not a file mode`)
    return value.mode
  }
  const token = (): string => {
    if (typeof value.token !== 'string' || !/^[0-9a-f]+$/.test(value.token))
      throw new Error(`${field}: token is not lowercase hex`)
    return value.token
  }
  const at = (): 'top' | 'end' => {
    if (value.at !== 'top' && value.at !== 'end') throw new Error(`${field}: at is not top or end`)
    return value.at
  }
  const restart = (): { restart?: string[] } =>
    value.restart === undefined ? {} : { restart: argv(value.restart, `${field}: restart`) }
  switch (value.op) {
    case 'read-if-exists':
    case 'mkdir':
    case 'remove-tree':
      return { op: value.op, path: path() }
    case 'create':
      return { op: 'create', path: path(), data: text('data'), mode: mode() }
    case 'overwrite':
      return { op: 'overwrite', path: path(), data: text('data') }
    case 'attempt':
      return { op: 'attempt', argv: argv(value.argv, `${field}: argv`) }
    case 'add-block':
      return {
        op: 'add-block',
        path: path(),
        token: token(),
        text: text('text'),
        at: at(),
        mode: mode(),
        ...restart()
      }
    case 'set-block':
      return { op: 'set-block', path: path(), token: token(), text: text('text') }
    case 'remove-block':
      return { op: 'remove-block', path: path(), token: token(), at: at(), ...restart() }
    default:
      throw new Error(`${field}: no such operation`)
  }
}

function absolute(value: unknown, field: string): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0'))
    throw new Error(`${field}: not an absolute path`)
  return value
}

function argv(value: unknown, field: string): string[] {
  if (!Array.isArray(value) || value.length === 0) throw new Error(`${field}: not a command`)
  return value.map(word => {
    if (typeof word !== 'string') throw new Error(`${field}: not a list of words`)
    return word
  })
}
