import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ActivityType,
  derivationName,
  isProgressLine,
  LineSplitter,
  type NixEvent,
  parseNixLine,
  ResultType,
  stripAnsi
} from '../../../src/nix/nix-log.js'
import { fixtureLogs, nonBlankFixtureLines, readFixtureBytes } from '../support/fixtures.js'

const DRV = '/nix/store/5lkjfcim9xsbc9lbjpisbj34055zlj7g-lab-check-2154016889.drv'

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
    const logs = fixtureLogs()
    expect(logs.length).toBeGreaterThanOrEqual(12)
    for (const name of logs) {
      for (const line of nonBlankFixtureLines(name))
        expect(parseNixLine(line), `${name}: ${line}`).toBeDefined()
    }
  })

  it('finds the two actBuild starts of the remote fixture: the remote one, then the relayed one', () => {
    const starts = nonBlankFixtureLines('remote-build-nix-2.8.log')
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
    const msg = nonBlankFixtureLines('host-key-mismatch-nix-2.8.log')
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
    const bytes = readFixtureBytes('remote-build-fails-nix-2.8.log')
    const byByte = split([...bytes].map(byte => Buffer.from([byte])))
    expect(byByte).toEqual(nonBlankFixtureLines('remote-build-fails-nix-2.8.log'))
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

/** parseNixLine as it was before its fast paths: JSON.parse of the whole line, the behaviour they must keep. */
function parseWithJson(line: string): NixEvent | undefined {
  if (!line.startsWith('@nix ')) return undefined
  let value: unknown
  try {
    value = JSON.parse(line.slice(5))
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || !('action' in value)) return undefined
  const event: Record<string, unknown> = { ...value }
  const number = (key: string) => (typeof event[key] === 'number' ? event[key] : -1)
  const text = (key: string) => (typeof event[key] === 'string' ? event[key] : '')
  const fields = Array.isArray(event.fields)
    ? event.fields.filter(
        (item): item is string | number => typeof item === 'string' || typeof item === 'number'
      )
    : []
  switch (event.action) {
    case 'start':
      return {
        action: 'start',
        id: number('id'),
        type: number('type'),
        level: number('level'),
        text: text('text'),
        fields
      }
    case 'stop':
      return { action: 'stop', id: number('id') }
    case 'result':
      return { action: 'result', id: number('id'), type: number('type'), fields }
    case 'msg':
      return { action: 'msg', level: number('level'), msg: text('msg') }
    default:
      return undefined
  }
}

/** A line as Nix writes it: `@nix ` and the event's keys in sorted order. */
function nixLine(event: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(event).sort(([a], [b]) => a.localeCompare(b)))
  return `@nix ${JSON.stringify(sorted)}`
}

/** Text a build may print, with the log's own syntax in it. */
const buildOutput = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc
    .array(
      fc.constantFrom(
        '"type":105}',
        '"type":106}',
        '],"id":7,"type":105}',
        '{"action":"result","fields":[1,2],"id":3,"type":106}',
        '"',
        '\\',
        '\\"',
        '\u001b[31;1m',
        'größe ✓ 日本 🚀',
        '\t',
        '\n',
        ' ',
        '0'
      ),
      { maxLength: 6 }
    )
    .map(parts => parts.join(''))
)
const field = fc.oneof(
  buildOutput,
  fc.nat(),
  fc.integer(),
  fc.double(),
  fc.constant(null),
  fc.constant(true),
  fc.constant({ x: 1 })
)
const id = fc.oneof(
  fc.nat(),
  fc.constantFrom(0, 17755394801669, Number.MAX_SAFE_INTEGER, 2 ** 60),
  fc.integer()
)
const nixEventLine = fc.oneof(
  fc
    .record({
      action: fc.constant('result'),
      fields: fc.oneof(
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.array(field, { maxLength: 3 }),
        buildOutput.map(text => [text])
      ),
      id,
      type: fc.constantFrom(100, 101, 104, 105, 106, 107, 0, -105)
    })
    .map(nixLine),
  fc
    .record({
      action: fc.constantFrom('start', 'stop', 'msg'),
      fields: fc.array(field, { maxLength: 4 }),
      id,
      level: fc.nat(7),
      text: buildOutput,
      type: fc.constantFrom(0, 100, 105)
    })
    .map(nixLine)
)
/** Nix's lines, and lines one edit away from them: what must not fool a fast path. */
const nearNixLine = fc.oneof(
  nixEventLine,
  fc
    .tuple(
      nixEventLine,
      fc.nat(),
      fc.constantFrom('', ' ', '0', '9', '-', '.', '"', ',', ']', '}', '\r', 'e5', '\\')
    )
    .map(([line, at, insert]) => {
      const cut = at % (line.length + 1)
      return line.slice(0, cut) + insert + line.slice(cut + (insert === '' ? 1 : 0))
    })
)

describe('parseNixLine fast paths', () => {
  it('reads every line exactly as a plain JSON.parse of it does', () => {
    fc.assert(
      fc.property(nearNixLine, line => {
        expect(parseNixLine(line)).toEqual(parseWithJson(line))
      }),
      { numRuns: 5000 }
    )
  })

  it('reads build log lines with escapes, colours, non-ASCII and the log syntax in them', () => {
    for (const text of [
      'größe ✓ 日本 🚀',
      '\u001b[32mPASS\u001b[0m',
      'say "hi" \\ \t',
      '"type":105}',
      '',
      '],"id":1,"type":105}'
    ]) {
      for (const type of [ResultType.BuildLogLine, ResultType.PostBuildLogLine, ResultType.SetPhase]) {
        const line = nixLine({ action: 'result', fields: [text], id: 17755394801677, type })
        expect(parseNixLine(line)).toEqual({ action: 'result', id: 17755394801677, type, fields: [text] })
      }
    }
  })

  it('keeps ids too long to sum digit by digit exact', () => {
    for (const id of [2 ** 60, 1234567890123456, Number.MAX_SAFE_INTEGER]) {
      const line = `@nix {"action":"result","fields":["x"],"id":${BigInt(id)},"type":101}`
      expect(parseNixLine(line)).toEqual({ action: 'result', id, type: 101, fields: ['x'] })
    }
  })

  it('leaves what is not one string in Nix shape to the full parse', () => {
    expect(parseNixLine('@nix {"action":"result","fields":["a","b"],"id":1,"type":101}')).toEqual({
      action: 'result',
      id: 1,
      type: 101,
      fields: ['a', 'b']
    })
    expect(parseNixLine('@nix {"action":"result","fields":["a"],"id":01,"type":101}')).toBeUndefined()
    expect(parseNixLine('@nix {"action":"result","fields":["a\tb"],"id":1,"type":101}')).toBeUndefined()
    expect(parseNixLine('@nix {"action":"result","fields":["a"],"id":1,"type":101} ')).toEqual({
      action: 'result',
      id: 1,
      type: 101,
      fields: ['a']
    })
  })
})

describe('isProgressLine', () => {
  it('accepts the progress and set-expected results of the captured logs, and nothing else in them', () => {
    const lines = fixtureLogs().flatMap(nonBlankFixtureLines)
    const progress = lines.filter(isProgressLine)
    expect(progress.length).toBeGreaterThan(100)
    for (const line of lines) {
      const event = parseNixLine(line)
      const isProgress =
        event?.action === 'result' &&
        (event.type === ResultType.Progress || event.type === ResultType.SetExpected)
      expect(isProgressLine(line), line).toBe(isProgress)
    }
  })

  it('does not take a build log line quoting a progress result for one', () => {
    for (const text of [
      '"type":105}',
      '{"action":"result","fields":[0,1,1,0],"id":9,"type":105}',
      'x"],"id":9,"type":106}'
    ]) {
      const line = nixLine({ action: 'result', fields: [text], id: 9, type: 101 })
      expect(line.endsWith('"type":101}')).toBe(true)
      expect(isProgressLine(line), line).toBe(false)
      expect(parseNixLine(line)).toEqual({ action: 'result', id: 9, type: 101, fields: [text] })
    }
    // A line that ends like a progress result but is not one: its text field makes it a string result.
    const fake = '@nix {"action":"result","fields":["0,1],\\"id\\":9,\\"type\\":105}"],"id":9,"type":105}'
    expect(isProgressLine(fake)).toBe(false)
  })

  it('rejects the actBuild start, whose type is also 105', () => {
    const start = nonBlankFixtureLines('remote-build-nix-2.8.log').find(
      line => line.includes('"action":"start"') && line.endsWith('"type":105}')
    )
    expect(start).toBeDefined()
    expect(isProgressLine(start ?? '')).toBe(false)
  })

  it('rejects near misses that JSON.parse would reject or read otherwise', () => {
    for (const line of [
      '@nix {"action":"result","fields":[01,1],"id":9,"type":105}',
      '@nix {"action":"result","fields":[-1,1],"id":9,"type":105}',
      '@nix {"action":"result","fields":[1.5],"id":9,"type":105}',
      '@nix {"action":"result","fields":[1,,1],"id":9,"type":105}',
      '@nix {"action":"result","fields":[1],"id":09,"type":105}',
      '@nix {"action":"result","fields":[1],"id":9,"type":1050}',
      '@nix {"action":"result","fields":[1],"id":9,"type":107}',
      '@nix {"action":"result","fields":[1],"id":9,"type":105} ',
      '@nix  {"action":"result","fields":[1],"id":9,"type":105}',
      '@nix {"action":"result","fields":[1],"id":9,"level":3,"type":105}',
      'warning: "type":105}'
    ]) {
      expect(isProgressLine(line), line).toBe(false)
    }
    expect(isProgressLine('@nix {"action":"result","fields":[],"id":0,"type":106}')).toBe(true)
  })

  it('accepts a line only if parseNixLine reads it as a progress or set-expected result', () => {
    fc.assert(
      fc.property(nearNixLine, line => {
        const event = parseWithJson(line)
        if (isProgressLine(line)) {
          expect(event?.action === 'result' ? event.type : undefined).toBeOneOf([
            ResultType.Progress,
            ResultType.SetExpected
          ])
        }
      }),
      { numRuns: 5000 }
    )
  })

  it('accepts every progress and set-expected result Nix writes', () => {
    const progress = fc.record({
      action: fc.constant('result'),
      fields: fc.array(fc.oneof(fc.nat(), fc.maxSafeNat()), { maxLength: 4 }),
      id: fc.oneof(fc.nat(), fc.maxSafeNat()),
      type: fc.constantFrom(ResultType.Progress, ResultType.SetExpected)
    })
    fc.assert(
      fc.property(progress, event => {
        expect(isProgressLine(nixLine(event))).toBe(true)
      })
    )
  })
})

describe('LineSplitter, wherever the chunks are cut', () => {
  it('gives the lines of the text, a line longer than many chunks included', () => {
    const text = fc.array(
      fc.oneof(fc.string({ unit: 'grapheme', maxLength: 30 }), fc.constant('x'.repeat(300))),
      {
        maxLength: 12
      }
    )
    fc.assert(
      fc.property(text, fc.array(fc.nat(400), { maxLength: 20 }), (lines, cuts) => {
        const bytes = Buffer.from(lines.join('\n'), 'utf8')
        const points = [...new Set(cuts.map(cut => cut % (bytes.length + 1)))].sort((a, b) => a - b)
        const chunks = [0, ...points].map((start, index) =>
          bytes.subarray(start, points[index] ?? bytes.length)
        )
        const expected = lines.join('\n').split('\n')
        if (expected.at(-1) === '') expected.pop()
        expect(split(chunks)).toEqual(expected)
      }),
      { numRuns: 1000 }
    )
  })
})
