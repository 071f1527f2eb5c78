import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  ActivityType,
  derivationName,
  LineSplitter,
  parseNixLine,
  ResultType,
  stripAnsi
} from '../../src/nix-log.js'

const FIXTURES = join(import.meta.dirname, '..', 'fixtures')
const DRV = '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-lab-check-2154016889.drv'

function fixtureLines(name: string): string[] {
  return readFileSync(join(FIXTURES, name), 'utf8')
    .split('\n')
    .filter(line => line !== '')
}

function split(chunks: Buffer[], finish = true): string[] {
  const lines: string[] = []
  const splitter = new LineSplitter(line => lines.push(line))
  for (const chunk of chunks) splitter.push(chunk)
  if (finish) splitter.end()
  return lines
}

describe('parseNixLine', () => {
  it('reads an actBuild start with its derivation and machine', () => {
    const line =
      `@nix {"action":"start","fields":["${DRV}","ssh-ng://nixbuilder@labA",1,1],"id":17755394801669,"level":3,` +
      `"text":"building '${DRV}' on 'ssh-ng://nixbuilder@labA'","type":105}`
    expect(parseNixLine(line)).toEqual({
      action: 'start',
      id: 17755394801669,
      type: ActivityType.Build,
      level: 3,
      text: `building '${DRV}' on 'ssh-ng://nixbuilder@labA'`,
      fields: [DRV, 'ssh-ng://nixbuilder@labA', 1, 1]
    })
  })

  it('reads a start without fields as an empty field list', () => {
    expect(parseNixLine('@nix {"action":"start","id":7,"level":0,"text":"","type":102}')).toEqual({
      action: 'start',
      id: 7,
      type: ActivityType.Realise,
      level: 0,
      text: '',
      fields: []
    })
  })

  it('reads stop, result and msg events', () => {
    expect(parseNixLine('@nix {"action":"stop","id":17755394801677}')).toEqual({
      action: 'stop',
      id: 17755394801677
    })
    expect(
      parseNixLine('@nix {"action":"result","fields":["building 2154016889"],"id":9,"type":101}')
    ).toEqual({
      action: 'result',
      id: 9,
      type: ResultType.BuildLogLine,
      fields: ['building 2154016889']
    })
    expect(
      parseNixLine(
        '@nix {"action":"msg","level":0,"msg":"\\u001b[31;1merror:\\u001b[0m boom","raw_msg":"boom"}'
      )
    ).toEqual({
      action: 'msg',
      level: 0,
      msg: '\u001b[31;1merror:\u001b[0m boom'
    })
  })

  it('keeps only string and number fields', () => {
    const event = parseNixLine(
      '@nix {"action":"result","fields":["a",1,null,{"x":1},[2],true],"id":1,"type":104}'
    )
    expect(event).toEqual({ action: 'result', id: 1, type: ResultType.SetPhase, fields: ['a', 1] })
  })

  it('uses -1 and empty text for missing or mistyped numbers and strings', () => {
    expect(parseNixLine('@nix {"action":"start","id":"7","type":null,"text":5}')).toEqual({
      action: 'start',
      id: -1,
      type: -1,
      level: -1,
      text: '',
      fields: []
    })
    expect(parseNixLine('@nix {"action":"msg"}')).toEqual({ action: 'msg', level: -1, msg: '' })
  })

  it('returns undefined for lines that are not internal-json events', () => {
    for (const line of [
      '',
      'warning: unknown setting',
      ' @nix {"action":"stop","id":1}',
      '@nix{"action":"stop","id":1}',
      '@nix {not json',
      '@nix 42',
      '@nix null',
      '@nix "stop"',
      '@nix {"id":1}',
      '@nix {"action":"setPhase","id":1}'
    ]) {
      expect(parseNixLine(line)).toBeUndefined()
    }
  })

  it('reads every line of every captured Nix 2.8 log as an event', () => {
    const logs = readdirSync(FIXTURES).filter(name => name.endsWith('.log'))
    expect(logs.length).toBeGreaterThanOrEqual(12)
    for (const name of logs) {
      for (const line of fixtureLines(name)) expect(parseNixLine(line), `${name}: ${line}`).toBeDefined()
    }
  })

  it('finds the two actBuild starts of the remote fixture: the remote one, then the relayed one', () => {
    const starts = fixtureLines('remote-build-nix-2.8.log')
      .map(parseNixLine)
      .filter(event => event?.action === 'start' && event.type === ActivityType.Build)
    expect(starts.map(event => (event?.action === 'start' ? event.fields.slice(0, 2) : []))).toEqual([
      [DRV, 'ssh-ng://nixbuilder@labA'],
      [DRV, '']
    ])
  })
})

describe('stripAnsi', () => {
  it('removes the colour codes Nix puts in its messages', () => {
    const msg = fixtureLines('host-key-mismatch-nix-2.8.log')
      .map(parseNixLine)
      .find(event => event?.action === 'msg' && event.msg.includes('cannot build on'))
    expect(msg?.action === 'msg' ? stripAnsi(msg.msg) : '').toBe(
      "cannot build on 'ssh-ng://nixbuilder@labAbad': error: cannot open connection to remote store " +
        "'ssh-ng://nixbuilder@labAbad': error: unexpected end-of-file"
    )
  })

  it('leaves plain text, brackets and newlines alone', () => {
    expect(stripAnsi('(x86_64-linux, [kvm])\nnext [1]')).toBe('(x86_64-linux, [kvm])\nnext [1]')
  })

  it('removes cursor and erase sequences too', () => {
    expect(stripAnsi('\u001b[2K\u001b[1Gbuilding\u001b[?25h')).toBe('building')
  })
})

describe('derivationName', () => {
  it('drops the store directory, the hash and .drv', () => {
    expect(derivationName(DRV)).toBe('lab-check-2154016889')
    expect(derivationName('/nix/store/zsdq1lk5wfch6jy1k3j523lagya65j9y-hello-2.12.1.drv')).toBe(
      'hello-2.12.1'
    )
  })

  it('keeps a name whose first dash is not after a 32-character hash', () => {
    expect(derivationName('/tmp/my-thing.drv')).toBe('my-thing')
    expect(derivationName('hello-2.12')).toBe('hello-2.12')
  })
})

describe('LineSplitter', () => {
  it('emits each complete line without its newline, and the unfinished rest at the end', () => {
    expect(split([Buffer.from('one\ntwo\n\nthree')])).toEqual(['one', 'two', '', 'three'])
  })

  it('keeps an unfinished line until its newline arrives', () => {
    expect(
      split([Buffer.from('@nix {"act'), Buffer.from('ion":"stop",'), Buffer.from('"id":1}\nnext')], false)
    ).toEqual(['@nix {"action":"stop","id":1}'])
  })

  it('handles chunks that end right before or right after a newline', () => {
    expect(split([Buffer.from('a'), Buffer.from('\n'), Buffer.from('b\n'), Buffer.from('\nc')])).toEqual([
      'a',
      'b',
      '',
      'c'
    ])
  })

  it('emits nothing at the end when the stream ends with a newline', () => {
    expect(split([Buffer.from('a\n')])).toEqual(['a'])
    expect(split([])).toEqual([])
  })

  it('never decodes half a multi-byte UTF-8 character, wherever the chunks are cut', () => {
    const text = 'größe ✓ 🚀\nnext 日本\n'
    const bytes = Buffer.from(text, 'utf8')
    for (let first = 1; first < bytes.length; first++) {
      for (let second = first; second < bytes.length; second++) {
        const chunks = [bytes.subarray(0, first), bytes.subarray(first, second), bytes.subarray(second)]
        expect(split(chunks)).toEqual(['größe ✓ 🚀', 'next 日本'])
      }
    }
  })

  it('splits a captured log fed one byte at a time exactly like the whole file', () => {
    const bytes = readFileSync(join(FIXTURES, 'remote-build-fails-nix-2.8.log'))
    const byByte = split([...bytes].map(byte => Buffer.from([byte])))
    expect(byByte).toEqual(fixtureLines('remote-build-fails-nix-2.8.log'))
  })

  it('does not keep a reference to a chunk the caller reuses', () => {
    const lines: string[] = []
    const splitter = new LineSplitter(line => lines.push(line))
    const chunk = Buffer.from('abc')
    splitter.push(chunk)
    chunk.fill(0x7a)
    splitter.push(Buffer.from('\n'))
    expect(lines).toEqual(['abc'])
  })
})
