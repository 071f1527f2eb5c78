import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { NixLogReader } from '../../../src/nix/ledger.js'
import { parseNixLine } from '../../../src/nix/nix-log.js'
import {
  buildTimes,
  formatBytes,
  machineLabel,
  PROGRESS_INTERVAL_MS,
  type BuilderNames,
  progressLine,
  ProgressTracker
} from '../../../src/nix/progress.js'
import { fixtureLogs, nonBlankFixtureLines } from '../support/fixtures.js'
import { resultLine, startLine } from '../support/nix-log.js'

const LOGS = fixtureLogs()

interface Printed {
  /** Seconds since the start of the log. */
  at: number
  line: string
}

/**
 * Feeds log lines through NixLogReader with a tracker as its observer, as runNixBuild does, on a fake clock that
 * advances `stepMs` before each line; asks for a line after each one (runNixBuild asks every second).
 */
function follow(
  lines: readonly string[],
  options: { stepMs?: number; interval?: number; progress?: BuilderNames } = {}
): { printed: Printed[]; tracker: ProgressTracker; now: () => number } {
  let now = 0
  const clock = (): number => now
  const tracker = new ProgressTracker(clock, options.progress, options.interval)
  const reader = new NixLogReader(() => undefined, clock, tracker)
  const printed: Printed[] = []
  for (const text of lines) {
    now += options.stepMs ?? 1000
    reader.readLine(text)
    const line = tracker.line()
    if (line !== undefined) printed.push({ at: now / 1000, line })
  }
  return { printed, tracker, now: clock }
}

/** The line for the whole log: the tracker asked once, after the last line, with no interval to wait. */
function finalLine(lines: readonly string[], progress?: BuilderNames): string | undefined {
  let now = 0
  const tracker = new ProgressTracker(() => now, progress, 0)
  const reader = new NixLogReader(
    () => undefined,
    () => now,
    tracker
  )
  for (const line of lines) reader.readLine(line)
  now = 1
  return tracker.line()
}

/** Internal-json lines in the shape Nix writes them (keys sorted), so the reader's fast paths take them as Nix's. */
const nix = {
  start: (id: number, type: number, fields: (string | number)[] = [], text = ''): string =>
    `@nix ${JSON.stringify({ action: 'start', fields, id, level: 3, text, type })}`,
  stop: (id: number): string => `@nix ${JSON.stringify({ action: 'stop', id })}`,
  result: (id: number, type: number, fields: (string | number)[]): string =>
    `@nix ${JSON.stringify({ action: 'result', fields, id, type })}`,
  msg: (msg: string, level = 3): string => `@nix ${JSON.stringify({ action: 'msg', level, msg })}`
}

const drv = (n: number): string => `/nix/store/${String(n).padStart(32, '0')}-d${n}.drv`
const B1 = 'ssh-ng://nixbuilder@nix-offload-0a1b2c-1'
const B2 = 'ssh-ng://nixbuilder@nix-offload-0a1b2c-2'

describe('the progress tracker on recorded logs', () => {
  it('counts the build of Nix 2.34 against its "this derivation will be built", every 15 s, with the bytes copied', () => {
    // A line a second: the log lasts 93 s.
    expect(follow(nonBlankFixtureLines('remote-build-nix-2.34.log')).printed).toEqual([
      { at: 15, line: 'progress: 0/1 derivations built' },
      { at: 30, line: 'progress: 0/1 derivations built (labC: 1 running)' },
      // Built when the builder's own build activity stops; the output then comes back.
      { at: 54, line: 'progress: 1/1 derivations built' },
      { at: 69, line: 'progress: 1/1 derivations built, 48 B copied' },
      { at: 84, line: 'progress: 1/1 derivations built, 128 B copied' }
    ])
  })

  it('counts a copy that ended as whole, though Nix 2.26 left out its last progress (121 of 128 bytes)', () => {
    expect(finalLine(nonBlankFixtureLines('remote-build-nix-2.26.log'))).toBe(
      'progress: 1/1 derivations built, 128 B copied'
    )
  })

  it('takes the total of Nix 2.8, which lists nothing, from its own build activity, not the relayed one', () => {
    const lines = nonBlankFixtureLines('remote-build-nix-2.8.log')
    expect(lines.join('\n')).not.toContain('will be built')
    // Two actBuilds activities expect one derivation each: the runner's and the builder's, relayed over ssh-ng.
    expect(lines.filter(line => /"type":104\}$/.test(line) && line.includes('"start"'))).toHaveLength(2)
    // 2.8 reports no bytes for its copies over ssh-ng: the line counts the paths instead.
    expect(finalLine(lines)).toBe('progress: 1/1 derivations built, 1 path copied')
    expect(finalLine(nonBlankFixtureLines('local-build-nix-2.8.log'))).toBe('progress: 1/1 derivations built')
  })

  it('sums "these 2 derivations will be built", a local build as the runner, a failure and the bytes sent', () => {
    for (const name of [
      'builder-user-untrusted-local-input-nix-2.26.log',
      'builder-user-untrusted-local-input-nix-2.34.log'
    ]) {
      const lines = nonBlankFixtureLines(name)
      expect(lines.join('\n')).toContain('these 2 derivations will be built')
      const { printed } = follow(lines, { interval: 0 })
      const said = printed.map(p => p.line)
      expect(said, name).toContain('progress: 0/2 derivations built (runner: 1 running)')
      expect(said, name).toContain('progress: 1/2 derivations built (labC: 1 running), 136 B copied')
      expect(said.at(-1), name).toBe('progress: 1/2 derivations built, 1 failed, 136 B copied')
    }
  })

  it.each([
    'remote-build-fails-nix-2.8.log',
    'remote-build-fails-nix-2.26.log',
    'remote-build-fails-nix-2.34.log'
  ])('ends a failed build of %s with it failed, not built', name => {
    expect(finalLine(nonBlankFixtureLines(name))).toBe('progress: 0/1 derivations built, 1 failed')
  })

  it('prints at most one line every 15 s, none before 15 s, and never the same twice, on every recorded log', () => {
    let lines = 0
    for (const name of LOGS) {
      const { printed } = follow(nonBlankFixtureLines(name))
      let last = 0
      for (const { at, line } of printed) {
        expect(at - last, name).toBeGreaterThanOrEqual(PROGRESS_INTERVAL_MS / 1000)
        last = at
        expect(line, name).toMatch(/^progress: \d+(\/\d+)? derivations? built/)
      }
      expect(new Set(printed.map(p => p.line)).size, name).toBe(printed.length)
      lines += printed.length
    }
    expect(lines).toBeGreaterThan(LOGS.length)
  })

  it('prints nothing for a build that ends within 15 s, on every recorded log', () => {
    // 100 ms a line: the longest log (93 lines) ends in under 10 s.
    for (const name of LOGS)
      expect(follow(nonBlankFixtureLines(name), { stepMs: 100 }).printed, name).toEqual([])
  })

  it('says the same from parsed events as behind the reader, which skips progress lines unparsed', () => {
    for (const name of LOGS) {
      let now = 0
      const tracker = new ProgressTracker(() => now, {}, 0)
      for (const line of nonBlankFixtureLines(name)) {
        const event = parseNixLine(line)
        if (event !== undefined) tracker.event(event)
      }
      now = 1
      expect(tracker.line(), name).toBe(finalLine(nonBlankFixtureLines(name)))
    }
  })

  it('reads progress lines by hand as JSON.parse reads them, for any ids and figures', () => {
    // Ids as Nix prints them: any integer, also past 2^53, where JSON.parse rounds.
    const id = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 32n }), fc.bigInt({ min: 2n ** 40n, max: 2n ** 62n }))
    // Figures up to 2^48 (256 TiB copied): sums of them stay exact, as Nix's own never pass 2^53.
    const figures = fc.array(fc.nat({ max: 2 ** 48 }), { maxLength: 4 })
    const results = fc.array(fc.tuple(fc.boolean(), figures), { maxLength: 8 })
    fc.assert(
      fc.property(id, id, results, (copyId, buildsId, progress) => {
        fc.pre(Number(copyId) !== Number(buildsId))
        const lines = [
          startLine(buildsId, 104),
          startLine(copyId, 100, { fields: ['/nix/store/x', 'local', B1], level: 3 })
        ]
        for (const [toCopy, fields] of progress) {
          lines.push(resultLine(toCopy ? copyId : buildsId, 105, fields))
        }
        let now = 0
        const parsed = new ProgressTracker(() => now, {}, 0)
        for (const line of lines) {
          const event = parseNixLine(line)
          if (event !== undefined) parsed.event(event)
        }
        now = 1
        expect(finalLine(lines)).toBe(parsed.line())
      })
    )
  })

  it('names the builder of a remote-store build after it, not the runner', () => {
    const lines = nonBlankFixtureLines('ifd-remote-store-nix-2.34.log')
    const { printed } = follow(lines, { interval: 0, progress: { local: machineLabel(B2) } })
    expect(printed.map(p => p.line)).toContain(
      'progress: 0/1 derivations built (b2: 1 running), 408 B copied'
    )
    expect(printed.some(p => p.line.includes('runner'))).toBe(false)
  })
})

describe('the progress tracker on a long build', () => {
  /** 6 derivations on two builders and the runner, then a long silence. */
  function longBuild(): string[] {
    const lines = [nix.msg('these 6 derivations will be built:'), nix.start(1, 104)]
    const machines = [B1, B1, B1, B2, B2, '']
    for (const [index, machine] of machines.entries())
      lines.push(nix.start(10 + index, 105, [drv(index), machine, 1, 1]))
    return lines
  }

  it('prints running builds per builder, sorted, the runner by name', () => {
    // A line every 3 s: the builds start between 9 s and 24 s.
    expect(follow(longBuild(), { stepMs: 3000 }).printed).toEqual([
      { at: 15, line: 'progress: 0/6 derivations built (b1: 3 running)' }
    ])
    const quietAfter = [...longBuild(), ...Array<string>(10).fill('')]
    expect(follow(quietAfter, { stepMs: 3000 }).printed).toEqual([
      { at: 15, line: 'progress: 0/6 derivations built (b1: 3 running)' },
      { at: 30, line: 'progress: 0/6 derivations built (b1: 3 running, b2: 2 running, runner: 1 running)' }
    ])
  })

  it("names builders as the step does when told, and the builder's own relayed activity is no local build", () => {
    const labels = new Map([
      [B1, 'nixbuilder@a.example:22'],
      [B2, 'nixbuilder@b.example:22']
    ])
    const lines = [
      ...longBuild(),
      // Nix 2.8 over ssh-ng: the builder's own actBuild and actBuilds come back with an empty machine name.
      nix.start(30, 105, [drv(0), '', 1, 1]),
      nix.start(31, 104),
      nix.result(31, 105, [0, 40, 0, 0])
    ]
    expect(finalLine(lines, { labels })).toBe(
      'progress: 0/6 derivations built ' +
        '(nixbuilder@a.example:22: 3 running, nixbuilder@b.example:22: 2 running, runner: 1 running)'
    )
  })

  it('prints nothing while nothing changed, and the next change as soon as it comes after 15 s', () => {
    let now = 0
    const tracker = new ProgressTracker(() => now)
    const reader = new NixLogReader(
      () => undefined,
      () => now,
      tracker
    )
    for (const line of longBuild()) reader.readLine(line)
    now = 14_999
    expect(tracker.line()).toBeUndefined()
    now = 15_000
    expect(tracker.line()).toBe(
      'progress: 0/6 derivations built (b1: 3 running, b2: 2 running, runner: 1 running)'
    )
    now = 600_000
    expect(tracker.line()).toBeUndefined()
    // A build log line changes no figure.
    reader.readLine(nix.result(10, 101, ['compiling']))
    expect(tracker.line()).toBeUndefined()
    reader.readLine(nix.stop(10))
    now = 600_001
    expect(tracker.line()).toBe(
      'progress: 1/6 derivations built (b1: 2 running, b2: 2 running, runner: 1 running)'
    )
    reader.readLine(nix.stop(11))
    now = 614_000
    expect(tracker.line()).toBeUndefined()
    now = 615_001
    expect(tracker.line()).toBe(
      'progress: 2/6 derivations built (b1: 1 running, b2: 2 running, runner: 1 running)'
    )
  })

  it('prints nothing at all when no figure moved, however long the build (evaluation)', () => {
    let now = 0
    const tracker = new ProgressTracker(() => now)
    for (now = 0; now < 300_000; now += 1000) expect(tracker.line()).toBeUndefined()
  })

  it('sums the "will be built" of several builds in one command, and either wording', () => {
    const lines = [
      nix.msg('this derivation will be built:'),
      nix.msg(`  ${drv(1)}`),
      nix.msg('\u001b[1mthese 211 derivations will be built:\u001b[0m')
    ]
    expect(finalLine(lines)).toBe('progress: 0/212 derivations built')
    // "will be fetched" is substitution, not building.
    expect(finalLine([nix.msg('these 3 paths will be fetched (1.0 MiB download, 4.2 MiB unpacked):')])).toBe(
      undefined
    )
  })

  it('never counts fewer to build than it saw built (a derivation built while evaluating is in no list)', () => {
    const lines = [nix.msg('this derivation will be built:')]
    for (const n of [1, 2]) lines.push(nix.start(n, 105, [drv(n), B1, 1, 1]), nix.stop(n))
    expect(finalLine(lines)).toBe('progress: 2/2 derivations built')
  })

  it('counts without a total when Nix gave none', () => {
    expect(finalLine([nix.start(1, 105, [drv(1), B1, 1, 1]), nix.stop(1)])).toBe(
      'progress: 1 derivation built'
    )
    const two = [1, 2].flatMap(n => [nix.start(n, 105, [drv(n), B1, 1, 1]), nix.stop(n)])
    expect(finalLine(two)).toBe('progress: 2 derivations built')
  })

  it('counts the bytes of copies to and from builders, running and done, and not those from a cache', () => {
    const lines = [
      nix.start(1, 100, ['/nix/store/x-in', 'local', B1]),
      nix.result(1, 105, [512 * 1024, 1024 * 1024 * 1024, 0, 0]),
      // Stopped: all of it.
      nix.stop(1),
      nix.start(2, 100, ['/nix/store/y-out', 'ssh-ng://', 'local']),
      nix.result(2, 105, [Math.round(0.2 * 1024 * 1024 * 1024), 1024 * 1024 * 1024, 0, 0]),
      nix.start(3, 100, ['/nix/store/z-dep', 'https://cache.nixos.org', 'local']),
      nix.result(3, 105, [5 * 1024 * 1024 * 1024, 5 * 1024 * 1024 * 1024, 0, 0])
    ]
    expect(finalLine(lines)).toBe('progress: 0 derivations built, 1.2 GiB copied')
  })
})

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [5 * 1024 * 1024, '5.0 MiB'],
    [1.2 * 1024 ** 3, '1.2 GiB'],
    [3 * 1024 ** 4, '3.0 TiB']
  ])('%d bytes are %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text)
  })
})

describe('progressLine', () => {
  it('leaves out what is nothing yet', () => {
    expect(progressLine({ built: 0, failed: 0, running: new Map(), bytes: 0, copies: 0 })).toBe(
      'progress: 0 derivations built'
    )
    expect(
      progressLine({
        built: 37,
        failed: 1,
        total: 212,
        running: new Map([
          ['b10', 1],
          ['b2', 2],
          ['b1', 4],
          ['b3', 0]
        ]),
        bytes: 1.2 * 1024 ** 3,
        copies: 40
      })
    ).toBe(
      'progress: 37/212 derivations built (b1: 4 running, b2: 2 running, b10: 1 running), 1 failed, 1.2 GiB copied'
    )
  })
})

describe('machineLabel', () => {
  it.each([
    ['ssh-ng://nixbuilder@nix-offload-0a1b2c-1', 'b1'],
    ['ssh://nixbuilder@nix-offload-ff00aa-12', 'b12'],
    ['ssh-ng://nixbuilder@labC', 'labC'],
    ['ssh-ng://builder.example.com?ssh-key=/k', 'builder.example.com'],
    ['ssh-ng://', 'ssh-ng://']
  ])('%s is %s', (uri, label) => {
    expect(machineLabel(uri)).toBe(label)
  })
})

describe('buildTimes', () => {
  it('is nothing for no builds', () => {
    expect(buildTimes([])).toEqual({ wallMs: 0, busyMs: new Map() })
  })

  it('spans first start to last end, and counts parallel builds on one machine once', () => {
    const times = buildTimes([
      { machine: B1, start: 1000, end: 5000 },
      { machine: B1, start: 2000, end: 4000 },
      { machine: B1, start: 4500, end: 7000 },
      { machine: B1, start: 9000, end: 10_000 },
      { machine: B2, start: 3000, end: 3500 },
      { machine: '', start: 11_000, end: 12_000 }
    ])
    expect(times.wallMs).toBe(11_000)
    expect(times.busyMs).toEqual(
      new Map([
        [B1, 7000],
        [B2, 500],
        ['', 1000]
      ])
    )
  })

  it('counts an unfinished build until the latest time the records know, or until `until`', () => {
    const builds = [
      { machine: B1, start: 0, end: 2000 },
      { machine: B2, start: 1000 },
      { machine: B2, start: 3000, end: 4000 }
    ]
    expect(buildTimes(builds)).toEqual({
      wallMs: 4000,
      busyMs: new Map([
        [B1, 2000],
        [B2, 3000]
      ])
    })
    expect(buildTimes(builds, 10_000).busyMs.get(B2)).toBe(9000)
    expect(buildTimes(builds, 10_000).wallMs).toBe(10_000)
  })

  it('reads the ledger of a recorded log (times are line numbers)', () => {
    let now = 0
    const reader = new NixLogReader(
      () => undefined,
      () => now
    )
    for (const line of nonBlankFixtureLines('builder-user-untrusted-local-input-nix-2.34.log')) {
      now++
      reader.readLine(line)
    }
    const records = reader.ledger.records()
    const times = buildTimes(records)
    expect([...times.busyMs.keys()]).toEqual(['', 'ssh-ng://nixbuilder@labC'])
    const [local, remote] = records
    expect(times.busyMs.get('')).toBe((local?.end ?? 0) - (local?.start ?? 0))
    expect(times.wallMs).toBe((remote?.end ?? 0) - (local?.start ?? 0))
  })
})
